package dev.wisp.linux;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;

import static java.util.Objects.requireNonNull;

/**
 * Builds one netlink request: {@code struct nlmsghdr} (16 bytes), the family's fixed header (for
 * generic netlink {@code struct genlmsghdr}, 4 bytes; for rtnetlink links {@code struct ifinfomsg},
 * 16), then attributes ({@code struct nlattr}: 2-byte length including the 4-byte header, 2-byte
 * type, the payload padded to 4 bytes). Integers are in host byte order, as the kernel reads them;
 * tests pass {@link ByteOrder#LITTLE_ENDIAN} to compare bytes. The sequence number written here is
 * replaced by {@link NetlinkSocket} when it sends. Not thread-safe: one request per writer;
 * {@link #finish} writes the total length and returns the bytes.
 */
public final class NetlinkWriter {
    /** {@code NLA_F_NESTED}: the attribute holds attributes. */
    public static final int NLA_F_NESTED = 1 << 15;
    /** {@code NLA_F_NET_BYTEORDER}: the other flag bit of {@code nla_type}. */
    public static final int NLA_F_NET_BYTEORDER = 1 << 14;
    public static final int NLMSG_HDRLEN = 16;
    public static final int GENL_HDRLEN = 4;
    public static final int NLA_HDRLEN = 4;
    /** {@code NLM_F_REQUEST}. */
    public static final int NLM_F_REQUEST = 0x1;
    /** {@code NLM_F_MULTI}: one part of a multi-part reply. */
    public static final int NLM_F_MULTI = 0x2;
    /** {@code NLM_F_ACK}. */
    public static final int NLM_F_ACK = 0x4;
    /** {@code NLM_F_DUMP} ({@code NLM_F_ROOT | NLM_F_MATCH}). */
    public static final int NLM_F_DUMP = 0x300;
    /** {@code NLM_F_EXCL} and {@code NLM_F_CREATE}, for new objects. */
    public static final int NLM_F_EXCL = 0x200;
    public static final int NLM_F_CREATE = 0x400;
    /** {@code NLM_F_REQUEST | NLM_F_ACK}. */
    public static final int REQUEST_WITH_ACK = NLM_F_REQUEST | NLM_F_ACK;

    private ByteBuffer buf;
    private final Deque<Integer> nests = new ArrayDeque<>();

    private NetlinkWriter(ByteOrder order, int type, int flags, int seq) {
        buf = ByteBuffer.allocate(512).order(requireNonNull(order, "order"));
        buf.putInt(0); // nlmsg_len, written by finish()
        buf.putShort((short) type);
        buf.putShort((short) flags);
        buf.putInt(seq);
        buf.putInt(0); // nlmsg_pid: 0, the kernel fills in the sender
    }

    /** A generic-netlink request to family {@code type} with command {@code cmd} of {@code version}. */
    public static NetlinkWriter genl(ByteOrder order, int type, int flags, int seq, int cmd, int version) {
        NetlinkWriter w = new NetlinkWriter(order, type, flags, seq);
        w.buf.put((byte) cmd);
        w.buf.put((byte) version);
        w.buf.putShort((short) 0);
        return w;
    }

    /**
     * An {@code rtnetlink} link request ({@code RTM_NEWLINK}, {@code RTM_GETLINK}, ...): after the
     * {@code nlmsghdr} a {@code struct ifinfomsg} (family {@code AF_UNSPEC}, type 0, {@code index},
     * {@code ifiFlags}, {@code ifiChange}).
     */
    public static NetlinkWriter link(ByteOrder order, int type, int flags, int seq, int index, int ifiFlags,
            int ifiChange) {
        NetlinkWriter w = new NetlinkWriter(order, type, flags, seq);
        w.buf.put((byte) 0); // ifi_family AF_UNSPEC
        w.buf.put((byte) 0); // padding
        w.buf.putShort((short) 0); // ifi_type
        w.buf.putInt(index);
        w.buf.putInt(ifiFlags);
        w.buf.putInt(ifiChange);
        return w;
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
    public ByteOrder order() {
        return buf.order();
    }

    /** {@code NLA_ALIGN} / {@code NLMSG_ALIGN}: {@code n} rounded up to 4. */
    public static int align(int n) {
        return (n + 3) & ~3;
    }

    public NetlinkWriter u8(int type, int v) {
        header(type, 1);
        buf.put((byte) v);
        pad();
        return this;
    }

    public NetlinkWriter u16(int type, int v) {
        header(type, 2);
        buf.putShort((short) v);
        pad();
        return this;
    }

    public NetlinkWriter u32(int type, int v) {
        header(type, 4);
        buf.putInt(v);
        return this;
    }

    public NetlinkWriter bytes(int type, byte[] v) {
        header(type, v.length);
        buf.put(v);
        pad();
        return this;
    }

    /** A NUL-terminated string ({@code NLA_NUL_STRING}). */
    public NetlinkWriter string(int type, String v) {
        byte[] s = v.getBytes(StandardCharsets.US_ASCII);
        return bytes(type, Arrays.copyOf(s, s.length + 1));
    }

    /** Opens a nested attribute ({@code NLA_F_NESTED} set); {@link #end} closes it. */
    public NetlinkWriter begin(int type) {
        room(NLA_HDRLEN);
        nests.push(buf.position());
        buf.putShort((short) 0);
        buf.putShort((short) (type | NLA_F_NESTED));
        return this;
    }

    public NetlinkWriter end() {
        int at = nests.pop();
        buf.putShort(at, (short) (buf.position() - at));
        return this;
    }

    /** The request, its length written. */
    public byte[] finish() {
        if (!nests.isEmpty()) {
            throw new IllegalStateException(nests.size() + " nested attribute(s) not closed");
        }
        buf.putInt(0, buf.position());
        return Arrays.copyOf(buf.array(), buf.position());
    }
}
