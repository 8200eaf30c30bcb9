package dev.wisp.bpf.capture.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.bpf.capture.CaptureConfig;
import dev.wisp.bpf.capture.FlowEvent;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The byte layouts against records written by hand from capture.bpf.c's structs. */
class LayoutsTest {
    private static InetSocketAddress at(String ip, int port) throws Exception {
        return new InetSocketAddress(InetAddress.getByName(ip), port);
    }

    private static byte[] encode(dev.wisp.bpf.Codec<?> codec, Object value) {
        @SuppressWarnings("unchecked")
        dev.wisp.bpf.Codec<Object> c = (dev.wisp.bpf.Codec<Object>) codec;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(c.size());
            c.write(value, s);
            return s.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    @Test
    void tupleIsTwoEndpointsOfAddressPortFamily() throws Exception {
        byte[] bytes = encode(Layouts.TUPLE_CODEC, new Layouts.Tuple(at("10.1.1.1", 15001), at("10.1.1.2", 40000)));
        assertThat(HexFormat.of().formatHex(bytes)).isEqualTo(
                "0a010101" + "00".repeat(12) + "993a" + "0200" + "0a010102" + "00".repeat(12) + "409c" + "0200");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocateFrom(ValueLayout.JAVA_BYTE, bytes);
            assertThat(Layouts.TUPLE_CODEC.read(s))
                    .isEqualTo(new Layouts.Tuple(at("10.1.1.1", 15001), at("10.1.1.2", 40000)));
        }
    }

    @Test
    void origDstCarriesTheRedirectFlagAndCgroupAtTheirOffsets() throws Exception {
        byte[] bytes = encode(Layouts.ORIG_DST_CODEC, new Layouts.OrigDst(at("fd00::1", 8080), true, 0x1122L));
        assertThat(bytes).hasSize(32);
        assertThat(HexFormat.of().formatHex(bytes, 0, 20)).isEqualTo("fd00" + "00".repeat(13) + "01" + "901f0a00");
        assertThat(bytes[20]).isEqualTo((byte) 1);
        assertThat(HexFormat.of().formatHex(bytes, 24, 32)).isEqualTo("2211000000000000");
    }

    @Test
    void configPutsTheListenerAndMeshPortsWhereTheProgramReadsThem() throws Exception {
        CaptureConfig config = new CaptureConfig(Path.of("/sys/fs/bpf/x"), Path.of("/sys/fs/cgroup"),
                at("10.0.0.1", 15001), at("fd00::1", 15001), 15006, 15008, List.of(15001, 15008), List.of());
        byte[] b = encode(Layouts.CONFIG_CODEC, Layouts.config(config));
        assertThat(b).hasSize(44);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(HexFormat.of().formatHex(b, 0, 4)).isEqualTo("0a000001");
        assertThat(Short.toUnsignedInt(bb.getShort(4))).isEqualTo(15001);
        assertThat(Short.toUnsignedInt(bb.getShort(6))).isEqualTo(15008);
        assertThat(b[8]).isEqualTo((byte) 0xfd);
        assertThat(Short.toUnsignedInt(bb.getShort(24))).isEqualTo(15001);
        assertThat(Short.toUnsignedInt(bb.getShort(26))).isEqualTo(15006);
        assertThat(Short.toUnsignedInt(bb.getShort(28))).isEqualTo(15001);
        assertThat(Short.toUnsignedInt(bb.getShort(30))).isEqualTo(15008);
        assertThat(bb.getShort(32)).isZero();
    }

    @Test
    void anIpv6OnlyNodesConfigLeavesTheIpv4ListenerZeroSoConnect4LetsIpv4Be() throws Exception {
        CaptureConfig config = CaptureConfig.of(Path.of("/sys/fs/cgroup"), null, at("fd00:206::12", 15001), List
                .of());
        byte[] b = encode(Layouts.CONFIG_CODEC, Layouts.config(config));
        assertThat(HexFormat.of().formatHex(b, 0, 6)).isEqualTo("000000000000");
        assertThat(HexFormat.of().formatHex(b, 8, 24)).isEqualTo("fd000206000000000000000000000012");
        assertThat(Short.toUnsignedInt(ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getShort(24))).isEqualTo(
                15001);
        assertThatThrownBy(() -> CaptureConfig.of(Path.of("/sys/fs/cgroup"), null, null, List.of()))
                .hasMessageContaining("no outbound listener");
    }

    @Test
    void decodesAFlowEventRecord() throws Exception {
        ByteBuffer r = ByteBuffer.allocate(Layouts.FLOW_EVENT).order(ByteOrder.LITTLE_ENDIAN);
        r.putLong(0, 77).putLong(8, 4242).putLong(16, 100).putLong(24, 321).putInt(32, 2).putInt(36, 1);
        r.put(40, new byte[]{10, 0, 0, 2}).putShort(56, (short) 40000).putShort(58, (short) 2);
        r.put(60, new byte[]{10, 0, 0, 1}).putShort(76, (short) 15001).putShort(78, (short) 2);
        r.put(80, new byte[]{10, 0, 1, 2}).putShort(96, (short) 8080).putShort(98, (short) 2);

        assertThat(Layouts.flowEvent(r)).isEqualTo(new FlowEvent(FlowEvent.Type.CLOSED, 77, 4242, true,
                at("10.0.0.2", 40000), at("10.0.0.1", 15001), at("10.0.1.2", 8080), 100, 321));
    }

    @Test
    void refusesShortOrUnknownRecords() {
        assertThatThrownBy(() -> Layouts.flowEvent(ByteBuffer.allocate(10)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("10 bytes");
        ByteBuffer r = ByteBuffer.allocate(Layouts.FLOW_EVENT).order(ByteOrder.LITTLE_ENDIAN).putInt(32, 9);
        assertThatThrownBy(() -> Layouts.flowEvent(r)).hasMessageContaining("unknown flow event type 9");
    }
}
