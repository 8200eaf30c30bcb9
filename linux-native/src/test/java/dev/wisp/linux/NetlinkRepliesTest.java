package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * How one request's answer is read, from datagrams built here to {@code <linux/netlink.h>}'s layout:
 * acks, single answers, multi-part dumps up to {@code NLMSG_DONE}, errors with the kernel's extended
 * ack, what is skipped (another sequence, a sender that is not the kernel) and what is malformed.
 */
class NetlinkRepliesTest {
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final int SEQ = 42;

    static byte[] message(int type, int flags, int seq, byte[] body) {
        ByteBuffer b = ByteBuffer.allocate(16 + NetlinkWriter.align(body.length)).order(LE);
        b.putInt(16 + body.length).putShort((short) type).putShort((short) flags).putInt(seq).putInt(0).put(body);
        return b.array();
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    static byte[] errno(int error) {
        // errno, then the request's header echoed (NETLINK_CAP_ACK: the header only)
        return ByteBuffer.allocate(20).order(LE).putInt(error).putInt(16).array();
    }

    static byte[] ack(int seq) {
        return message(NetlinkReplies.Control.ERROR.type, NetlinkExtendedAck.NLM_F_CAPPED, seq, errno(0));
    }

    static NetlinkReplies replies() {
        return new NetlinkReplies("TEST_REQUEST", SEQ, LE, 1 << 20);
    }

    static boolean feed(NetlinkReplies r, byte[] datagram) throws NetlinkException {
        return r.accept(datagram, datagram.length, 0);
    }

    @Test
    void anAckEndsAnAnswerWithNoData() throws Exception {
        NetlinkReplies r = replies();
        assertThat(feed(r, ack(SEQ))).isTrue();
        assertThat(r.messages()).isEmpty();
    }

    @Test
    void aSingleAnswerIsFollowedByItsAck() throws Exception {
        NetlinkReplies r = replies();
        assertThat(feed(r, message(0x10, 0, SEQ, new byte[]{1, 2, 0, 0}))).isFalse();
        assertThat(feed(r, ack(SEQ))).isTrue();
        assertThat(r.messages()).singleElement().satisfies(m -> {
            assertThat(m.type()).isEqualTo(0x10);
            assertThat(m.payload()).containsExactly(1, 2, 0, 0);
        });
    }

    @Test
    void aDumpRunsOverSeveralDatagramsUntilDone() throws Exception {
        NetlinkReplies r = replies();
        int multi = NetlinkWriter.NLM_F_MULTI;
        assertThat(feed(r, concat(message(20, multi, SEQ, new byte[]{1}), message(20, multi, SEQ, new byte[]{2}))))
                .isFalse();
        assertThat(feed(r, message(20, multi, SEQ, new byte[]{3}))).isFalse();
        assertThat(
                feed(r, concat(message(20, multi, SEQ, new byte[]{4}), message(NetlinkReplies.Control.DONE.type, multi,
                        SEQ, new byte[4]))))
                .isTrue();
        assertThat(r.messages()).extracting(m -> (int) m.payload()[0]).containsExactly(1, 2, 3, 4);
    }

    @Test
    void anotherSequenceANoopAndASenderThatIsNotTheKernelAreSkipped() throws Exception {
        NetlinkReplies r = replies();
        assertThat(feed(r, ack(SEQ - 1))).as("a late ack of the previous request").isFalse();
        assertThat(feed(r, message(NetlinkReplies.Control.NOOP.type, 0, SEQ, new byte[0]))).isFalse();
        byte[] forged = ack(SEQ);
        assertThat(r.accept(forged, forged.length, 4242)).as("another process's datagram").isFalse();
        assertThat(r.skipped()).isEqualTo(3);
        assertThat(feed(r, ack(SEQ))).isTrue();
    }

    @Test
    void anErrorCarriesItsErrnoTheRequestAndTheKernelsSentence() {
        byte[] text = "Unknown device type\0".getBytes(StandardCharsets.US_ASCII);
        byte[] tlv = ByteBuffer.allocate(4 + NetlinkWriter.align(text.length)).order(LE).putShort((short) (4
                + text.length)).putShort((short) NetlinkExtendedAck.NLMSGERR_ATTR_MSG).put(text).array();
        byte[] err = message(NetlinkReplies.Control.ERROR.type,
                NetlinkExtendedAck.NLM_F_CAPPED | NetlinkExtendedAck.NLM_F_ACK_TLVS,
                SEQ, concat(errno(-Errno.EOPNOTSUPP), tlv));
        assertThatThrownBy(() -> feed(replies(), err)).isInstanceOfSatisfying(NetlinkException.class, e -> {
            assertThat(e.errno()).isEqualTo(Errno.EOPNOTSUPP);
            assertThat(e.kernelMessage()).isEqualTo("Unknown device type");
            assertThat(e.call()).isEqualTo("TEST_REQUEST");
        }).hasMessageContaining("TEST_REQUEST failed: EOPNOTSUPP (operation not supported)")
                .hasMessageContaining("the kernel says \"Unknown device type\"");
        // Without NETLINK_CAP_ACK the whole request is echoed before the sentence.
        byte[] request = message(16, 5, SEQ, new byte[12]);
        byte[] uncapped = message(NetlinkReplies.Control.ERROR.type, NetlinkExtendedAck.NLM_F_ACK_TLVS, SEQ, concat(
                ByteBuffer.allocate(4).order(LE).putInt(-Errno.EOPNOTSUPP).array(), request, tlv));
        assertThatThrownBy(() -> feed(replies(), uncapped)).isInstanceOfSatisfying(NetlinkException.class,
                e -> assertThat(e.kernelMessage()).isEqualTo("Unknown device type"));
    }

    @Test
    void aDumpThatEndsInAnErrorIsAnError() {
        byte[] done = message(NetlinkReplies.Control.DONE.type, NetlinkWriter.NLM_F_MULTI, SEQ, ByteBuffer.allocate(4)
                .order(LE).putInt(-Errno.ENODEV).array());
        assertThatThrownBy(() -> feed(replies(), done)).isInstanceOfSatisfying(NetlinkException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.ENODEV)).hasMessageContaining("the dump ended in an error");
    }

    @Test
    void lengthsThatDoNotFitAreMalformedNeverAnIndexError() {
        byte[] ok = message(20, 0, SEQ, new byte[8]);
        byte[] tooLong = ok.clone();
        ByteBuffer.wrap(tooLong).order(LE).putInt(0, 4096);
        byte[] tooShort = ok.clone();
        ByteBuffer.wrap(tooShort).order(LE).putInt(0, 8);
        byte[] negative = ok.clone();
        ByteBuffer.wrap(negative).order(LE).putInt(0, -16);
        byte[] stray = concat(ok, new byte[]{1, 2, 3});
        byte[] shortError = message(NetlinkReplies.Control.ERROR.type, 0, SEQ, new byte[2]);
        byte[] badEcho = message(NetlinkReplies.Control.ERROR.type, NetlinkExtendedAck.NLM_F_ACK_TLVS, SEQ,
                ByteBuffer.allocate(
                        20).order(LE).putInt(-1).putInt(9999).array());
        for (byte[] bad : new byte[][]{tooLong, tooShort, negative, stray, shortError, badEcho}) {
            assertThatThrownBy(() -> feed(replies(), bad)).isInstanceOfSatisfying(NetlinkException.class,
                    e -> assertThat(e.errno()).isEqualTo(Errno.EPROTO)).hasMessageContaining("malformed reply");
        }
        assertThatThrownBy(() -> feed(replies(), message(NetlinkReplies.Control.ERROR.type, 0, SEQ, errno(5))))
                .hasMessageContaining("positive errno");
    }

    @Test
    void anAnswerLargerThanTheBoundIsRefused() throws Exception {
        NetlinkReplies r = new NetlinkReplies("BIG_DUMP", SEQ, LE, 100);
        byte[] part = message(20, NetlinkWriter.NLM_F_MULTI, SEQ, new byte[40]);
        assertThat(feed(r, part)).isFalse();
        assertThatThrownBy(() -> feed(r, part)).isInstanceOfSatisfying(NetlinkException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.ENOBUFS)).hasMessageContaining("passed 100 bytes");
    }
}
