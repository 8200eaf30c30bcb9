package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The attributes ({@code struct nlattr}) of one netlink message or nest, decoded with every length
 * checked against the bytes that hold it: what a reply says is a claim. An attribute shorter than
 * its 4-byte header, one that runs past its container, stray bytes after the last one, or a value
 * of the wrong size for its type is a {@link NetlinkException} ({@link Errno#EPROTO}) naming the
 * reply and the offset, never an index exception. The padding after an attribute (to 4 bytes) may
 * be missing after the last one, as {@code nla_for_each_attr} allows. Immutable, thread-safe.
 */
public final class NetlinkAttributes {
    private final List<Attribute> list;

    private NetlinkAttributes(List<Attribute> list) {
        this.list = List.copyOf(list);
    }

    /**
     * Decodes the attributes in {@code buf[offset, offset + length)}.
     *
     * @param what names the reply in errors, e.g. {@code "CTRL_CMD_GETFAMILY reply"}
     */
    public static NetlinkAttributes parse(byte[] buf, int offset, int length, ByteOrder order, String what)
            throws NetlinkException {
        requireNonNull(buf, "buf");
        requireNonNull(order, "order");
        if (offset < 0 || length < 0 || offset > buf.length - length) {
            throw NetlinkException.malformed(what, "range " + offset + "+" + length + " outside " + buf.length
                    + " bytes");
        }
        ByteBuffer b = ByteBuffer.wrap(buf).order(order);
        List<Attribute> out = new ArrayList<>();
        int at = offset;
        int end = offset + length;
        while (at < end) {
            if (end - at < NetlinkWriter.NLA_HDRLEN) {
                throw NetlinkException.malformed(what, (end - at) + " stray byte(s) at offset " + at);
            }
            int len = Short.toUnsignedInt(b.getShort(at));
            int rawType = Short.toUnsignedInt(b.getShort(at + 2));
            if (len < NetlinkWriter.NLA_HDRLEN) {
                throw NetlinkException.malformed(what, "attribute type " + (rawType & 0x3fff) + " at offset " + at
                        + " claims " + len + " bytes, less than its header");
            }
            if (len > end - at) {
                throw NetlinkException.malformed(what, "attribute type " + (rawType & 0x3fff) + " at offset " + at
                        + " claims " + len + " bytes, " + (end - at) + " remain");
            }
            out.add(new Attribute(rawType & ~(NetlinkWriter.NLA_F_NESTED | NetlinkWriter.NLA_F_NET_BYTEORDER),
                    (rawType & NetlinkWriter.NLA_F_NESTED) != 0, buf, at + NetlinkWriter.NLA_HDRLEN,
                    len - NetlinkWriter.NLA_HDRLEN, order, what));
            at = Math.min(end, at + NetlinkWriter.align(len));
        }
        return new NetlinkAttributes(out);
    }

    /** Every attribute in order (a type may repeat: arrays). */
    public List<Attribute> all() {
        return list;
    }

    /** The first attribute of {@code type}, or null. */
    public Attribute first(int type) {
        for (Attribute a : list) {
            if (a.type() == type) {
                return a;
            }
        }
        return null;
    }

    /**
     * One attribute: its type (flag bits cleared), whether {@code NLA_F_NESTED} was set, and its
     * payload ({@code length} bytes at {@code offset} of the reply's buffer, which is never written).
     */
    public record Attribute(int type, boolean nestedFlag, byte[] buf, int offset, int length, ByteOrder order,
            String what) {
        public int u8() throws NetlinkException {
            exactly(1);
            return Byte.toUnsignedInt(buf[offset]);
        }

        public int u16() throws NetlinkException {
            exactly(2);
            return Short.toUnsignedInt(ByteBuffer.wrap(buf).order(order).getShort(offset));
        }

        /** As unsigned as Java allows: callers that need more than 2^31 use {@link Integer#toUnsignedLong}. */
        public int u32() throws NetlinkException {
            exactly(4);
            return ByteBuffer.wrap(buf).order(order).getInt(offset);
        }

        public long u64() throws NetlinkException {
            exactly(8);
            return ByteBuffer.wrap(buf).order(order).getLong(offset);
        }

        /** The payload, of exactly {@code n} bytes. */
        public byte[] bytes(int n) throws NetlinkException {
            exactly(n);
            return bytes();
        }

        public byte[] bytes() {
            return Arrays.copyOfRange(buf, offset, offset + length);
        }

        /** A string up to its first NUL (or the whole payload when there is none), as UTF-8. */
        public String string() {
            int n = 0;
            while (n < length && buf[offset + n] != 0) {
                n++;
            }
            return new String(buf, offset, n, StandardCharsets.UTF_8);
        }

        /** The attributes inside this one (whether or not the sender set {@code NLA_F_NESTED}). */
        public NetlinkAttributes nested() throws NetlinkException {
            return parse(buf, offset, length, order, what);
        }

        private void exactly(int n) throws NetlinkException {
            if (length != n) {
                throw NetlinkException.malformed(what, "attribute type " + type + " at offset " + offset + " has "
                        + length + " bytes, expected " + n);
            }
        }

        @Override
        public String toString() {
            return "Attribute[type=" + type + ", length=" + length + "]";
        }

        @Override
        public boolean equals(Object o) {
            return this == o;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(this);
        }
    }
}
