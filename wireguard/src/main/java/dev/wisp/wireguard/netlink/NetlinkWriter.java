package dev.wisp.wireguard.netlink;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;

/**
 * Builds one generic-netlink request: {@code struct nlmsghdr} (16 bytes), {@code struct genlmsghdr}
 * (4 bytes), then attributes ({@code struct nlattr}: 2-byte length including the 4-byte header,
 * 2-byte type, the payload padded to 4 bytes). Integers are in host byte order, as the kernel reads
 * them; tests pass {@link ByteOrder#LITTLE_ENDIAN} to compare bytes. Not thread-safe: one request per
 * writer; {@link #finish} writes the total length and returns the bytes.
 */
final class NetlinkWriter {
    /** {@code NLA_F_NESTED}: the attribute holds attributes. */
    static final int NLA_F_NESTED = 1 << 15;
    static final int NLMSG_HDRLEN = 16;
    static final int GENL_HDRLEN = 4;
    static final int NLA_HDRLEN = 4;
    /** {@code NLM_F_REQUEST | NLM_F_ACK}. */
    static final int REQUEST_WITH_ACK = 0x1 | 0x4;

    private ByteBuffer buf;
    private final Deque<Integer> nests = new ArrayDeque<>();

    /** A request to family {@code type} with command {@code cmd} of {@code version}. */
    NetlinkWriter(ByteOrder order, int type, int flags, int seq, int cmd, int version) {
        buf = ByteBuffer.allocate(512).order(order);
        buf.putInt(0); // nlmsg_len, written by finish()
        buf.putShort((short) type);
        buf.putShort((short) flags);
        buf.putInt(seq);
        buf.putInt(0); // nlmsg_pid: 0, the kernel fills in the sender
        buf.put((byte) cmd);
        buf.put((byte) version);
        buf.putShort((short) 0);
    }

    private void room(int n) {
        if (buf.remaining() < n) {
            ByteBuffer bigger = ByteBuffer.allocate(Math.max(buf.capacity() * 2, buf.position() + n)).order(buf
                    .order());
            buf.flip();
            bigger.put(buf);
            buf = bigger;
        }
    }

    private void header(int type, int payload) {
        room(NLA_HDRLEN + align(payload));
        buf.putShort((short) (NLA_HDRLEN + payload));
        buf.putShort((short) type);
    }

    private void pad() {
        while ((buf.position() & 3) != 0) {
            buf.put((byte) 0);
        }
    }

    /** The byte order of the integers. */
    ByteOrder order() {
        return buf.order();
    }

    static int align(int n) {
        return (n + 3) & ~3;
    }

    NetlinkWriter u8(int type, int v) {
        header(type, 1);
        buf.put((byte) v);
        pad();
        return this;
    }

    NetlinkWriter u16(int type, int v) {
        header(type, 2);
        buf.putShort((short) v);
        pad();
        return this;
    }

    NetlinkWriter u32(int type, int v) {
        header(type, 4);
        buf.putInt(v);
        return this;
    }

    NetlinkWriter bytes(int type, byte[] v) {
        header(type, v.length);
        buf.put(v);
        pad();
        return this;
    }

    /** A NUL-terminated string ({@code NLA_NUL_STRING}). */
    NetlinkWriter string(int type, String v) {
        byte[] s = v.getBytes(StandardCharsets.US_ASCII);
        return bytes(type, Arrays.copyOf(s, s.length + 1));
    }

    /** Opens a nested attribute ({@code NLA_F_NESTED} set); {@link #end} closes it. */
    NetlinkWriter begin(int type) {
        room(NLA_HDRLEN);
        nests.push(buf.position());
        buf.putShort((short) 0);
        buf.putShort((short) (type | NLA_F_NESTED));
        return this;
    }

    NetlinkWriter end() {
        int at = nests.pop();
        buf.putShort(at, (short) (buf.position() - at));
        return this;
    }

    /** The request, its length written. */
    byte[] finish() {
        if (!nests.isEmpty()) {
            throw new IllegalStateException(nests.size() + " nested attribute(s) not closed");
        }
        buf.putInt(0, buf.position());
        return Arrays.copyOf(buf.array(), buf.position());
    }
}
