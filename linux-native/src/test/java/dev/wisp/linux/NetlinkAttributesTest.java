package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Attribute decoding: nesting, padding, types with their flag bits, and hostile lengths (shorter
 * than the header, past the container, stray bytes, wrong sizes), plus 20,000 seeded mutations of a
 * valid message that may only ever decode or fail with a {@link NetlinkException}.
 */
class NetlinkAttributesTest {
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** A generic-netlink message: a u8, a string, a nest holding a u16 and a u64, a u32. */
    static byte[] sample() {
        return NetlinkWriter.genl(LE, 0x20, 0, 1, 1, 1).u8(1, 7).string(2, "wisp").begin(3).u16(1, 0xbeef).bytes(2,
                ByteBuffer.allocate(8).order(LE).putLong(1L << 40).array()).end().u32(4, 0xfffffffe).finish();
    }

    static NetlinkAttributes decode(byte[] msg) throws NetlinkException {
        return NetlinkAttributes.parse(msg, 20, msg.length - 20, LE, "TEST reply");
    }

    @Test
    void decodesWhatTheWriterWrites() throws Exception {
        NetlinkAttributes a = decode(sample());
        assertThat(a.all()).extracting(NetlinkAttributes.Attribute::type).containsExactly(1, 2, 3, 4);
        assertThat(a.first(1).u8()).isEqualTo(7);
        assertThat(a.first(2).string()).isEqualTo("wisp");
        assertThat(a.first(3).nestedFlag()).isTrue();
        NetlinkAttributes nest = a.first(3).nested();
        assertThat(nest.first(1).u16()).isEqualTo(0xbeef);
        assertThat(nest.first(2).u64()).isEqualTo(1L << 40);
        assertThat(Integer.toUnsignedLong(a.first(4).u32())).isEqualTo(0xfffffffeL);
        assertThat(a.first(9)).isNull();
    }

    @Test
    void theLastAttributesPaddingMayBeMissing() throws Exception {
        byte[] msg = NetlinkWriter.genl(LE, 0x20, 0, 1, 1, 1).u8(1, 9).finish();
        // 20 bytes of headers + a 5-byte attribute: cut the 3 padding bytes.
        assertThat(NetlinkAttributes.parse(msg, 20, 5, LE, "TEST").first(1).u8()).isEqualTo(9);
    }

    @Test
    void hostileLengthsAreErrorsThatNameTheReply() {
        byte[] msg = sample();
        int first = 20;
        byte[] shortHeader = msg.clone();
        ByteBuffer.wrap(shortHeader).order(LE).putShort(first, (short) 3);
        byte[] pastEnd = msg.clone();
        ByteBuffer.wrap(pastEnd).order(LE).putShort(first, (short) 0x7fff);
        byte[] nestPastEnd = msg.clone();
        // the nest's first child (the u16) claims more than the nest holds
        int nest = first + 8 + 12;
        ByteBuffer.wrap(nestPastEnd).order(LE).putShort(nest + 4, (short) 200);
        for (byte[] bad : new byte[][]{shortHeader, pastEnd}) {
            assertThatThrownBy(() -> decode(bad)).isInstanceOfSatisfying(NetlinkException.class,
                    e -> assertThat(e.errno()).isEqualTo(Errno.EPROTO)).hasMessageContaining("TEST reply");
        }
        assertThatThrownBy(() -> decode(nestPastEnd).first(3).nested()).isInstanceOf(NetlinkException.class)
                .hasMessageContaining("claims 200 bytes");
        assertThatThrownBy(() -> NetlinkAttributes.parse(msg, 20, msg.length - 18, LE, "TEST"))
                .isInstanceOf(NetlinkException.class).hasMessageContaining("outside");
        assertThatThrownBy(() -> NetlinkAttributes.parse(new byte[]{8, 0, 1, 0, 0, 0, 0, 0, 1, 2}, 0, 10, LE,
                "TEST")).isInstanceOf(NetlinkException.class).hasMessageContaining("2 stray byte(s)");
        assertThatThrownBy(() -> decode(msg).first(1).u32()).isInstanceOf(NetlinkException.class)
                .hasMessageContaining("has 1 bytes, expected 4");
        assertThatThrownBy(() -> decode(msg).first(2).bytes(32)).isInstanceOf(NetlinkException.class);
    }

    @Test
    void mutatedMessagesDecodeOrFailAsNetlinkErrorsOnly() {
        byte[] valid = sample();
        Random random = new Random(15);
        int failures = 0;
        for (int i = 0; i < 20_000; i++) {
            byte[] m = valid.clone();
            for (int k = 1 + random.nextInt(4); k > 0; k--) {
                m[20 + random.nextInt(m.length - 20)] = (byte) random.nextInt(256);
            }
            int length = random.nextInt(4) == 0 ? random.nextInt(m.length - 20 + 1) : m.length - 20;
            try {
                walk(NetlinkAttributes.parse(m, 20, length, LE, "FUZZ"), 0);
            } catch (NetlinkException e) {
                failures++;
                assertThat(e.errno()).isEqualTo(Errno.EPROTO);
            }
        }
        assertThat(failures).as("some mutations must be refused").isPositive();
    }

    /** Reads every attribute every way, recursing into anything that parses as a nest. */
    private static void walk(NetlinkAttributes a, int depth) throws NetlinkException {
        for (NetlinkAttributes.Attribute x : a.all()) {
            x.string();
            x.bytes();
            for (int size : new int[]{1, 2, 4, 8}) {
                try {
                    switch (size) {
                        case 1 -> x.u8();
                        case 2 -> x.u16();
                        case 4 -> x.u32();
                        default -> x.u64();
                    }
                } catch (NetlinkException wrongSize) {
                    assertThat(wrongSize.errno()).isEqualTo(Errno.EPROTO);
                }
            }
            if (depth < 4 && x.nestedFlag()) {
                walk(x.nested(), depth + 1);
            }
        }
    }
}
