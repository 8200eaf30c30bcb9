package dev.wisp.node.dns;

import static java.util.Objects.requireNonNull;

import java.io.ByteArrayOutputStream;
import java.net.InetAddress;
import java.util.List;

/**
 * The part of a DNS message (RFC 1035) the proxy reads, and the answers it writes. Every message
 * comes from a pod or the network, so parsing is defensive: at most {@link #MAX_MESSAGE} bytes, the
 * header and exactly one question must be complete, a name is at most 255 bytes of labels of at most
 * 63, and a compression pointer must point strictly backwards (so pointers cannot loop) with at most
 * {@link #MAX_POINTERS} of them per name. Anything else is a {@link DnsFormatException}. Stateless.
 */
final class DnsMessage {
    /** Largest message accepted from anyone: the TCP length prefix allows no more. */
    static final int MAX_MESSAGE = 65_535;
    /** A UDP answer without EDNS fits in this many bytes (RFC 1035 4.2.1); larger ones are truncated. */
    static final int UDP_LIMIT = 512;
    static final int HEADER = 12;
    static final int MAX_POINTERS = 16;
    static final int MAX_NAME = 255;
    static final int TYPE_A = 1;
    static final int TYPE_AAAA = 28;
    static final int CLASS_IN = 1;
    static final int RCODE_FORMERR = 1;
    private static final int QR = 0x8000;
    private static final int AA = 0x0400;
    private static final int TC = 0x0200;
    private static final int RD = 0x0100;
    private static final int RA = 0x0080;

    private DnsMessage() {}

    /**
     * The one question of a query.
     *
     * @param id the query's ID, echoed in the answer
     * @param flags the query's header flags
     * @param name the name in lower case without the final dot; bytes other than printable ASCII,
     *            and dots inside a label, are escaped as {@code \ddd}, so such a name never equals a
     *            mesh hostname
     * @param wireName the name in wire form, uncompressed (written back into the answer)
     * @param type QTYPE
     * @param qclass QCLASS
     */
    record Question(int id, int flags, String name, byte[] wireName, int type, int qclass) {
        Question {
            requireNonNull(name, "name");
            requireNonNull(wireName, "wireName");
        }

        boolean isResponse() {
            return (flags & QR) != 0;
        }

        /** The OPCODE field: 0 is a standard query. */
        int opcode() {
            return (flags >> 11) & 0xF;
        }
    }

    /** The ID of a message of at least a header's length, for error answers; -1 when shorter. */
    static int id(byte[] msg, int length) {
        return length < HEADER ? -1 : u16(msg, 0);
    }

    /** Reads the header and the single question of {@code msg[0..length)}. */
    static Question parse(byte[] msg, int length) throws DnsFormatException {
        if (length < HEADER || length > MAX_MESSAGE || length > msg.length) {
            throw new DnsFormatException("a DNS message has 12 to 65535 bytes, not " + length);
        }
        int qdcount = u16(msg, 4);
        if (qdcount != 1) {
            throw new DnsFormatException("a query has one question, not " + qdcount);
        }
        ByteArrayOutputStream wire = new ByteArrayOutputStream(64);
        StringBuilder text = new StringBuilder(64);
        int end = readName(msg, length, HEADER, wire, text);
        if (end + 4 > length) {
            throw new DnsFormatException("the question ends before its type and class");
        }
        return new Question(u16(msg, 0), u16(msg, 2), text.toString(), wire.toByteArray(), u16(msg, end),
                u16(msg, end + 2));
    }

    /** Reads a name at {@code at}; returns where the name ends in the message (after its first pointer). */
    private static int readName(byte[] msg, int length, int at, ByteArrayOutputStream wire, StringBuilder text)
            throws DnsFormatException {
        int end = -1;
        int pointers = 0;
        int pos = at;
        int size = 1;
        while (true) {
            if (pos >= length) {
                throw new DnsFormatException("a name runs past the message's end");
            }
            int len = msg[pos] & 0xFF;
            if ((len & 0xC0) == 0xC0) {
                if (pos + 1 >= length) {
                    throw new DnsFormatException("a compression pointer is cut off");
                }
                int target = ((len & 0x3F) << 8) | (msg[pos + 1] & 0xFF);
                if (target >= pos || ++pointers > MAX_POINTERS) {
                    throw new DnsFormatException("a compression pointer does not point backwards");
                }
                if (end < 0) {
                    end = pos + 2;
                }
                pos = target;
                continue;
            }
            if ((len & 0xC0) != 0) {
                throw new DnsFormatException("label type " + (len >> 6) + " is not supported");
            }
            if (len == 0) {
                wire.write(0);
                return end < 0 ? pos + 1 : end;
            }
            size += len + 1;
            if (size > MAX_NAME || pos + 1 + len > length) {
                throw new DnsFormatException("a name is longer than 255 bytes or runs past the message's end");
            }
            wire.write(msg, pos, len + 1);
            if (!text.isEmpty()) {
                text.append('.');
            }
            for (int i = pos + 1; i <= pos + len; i++) {
                int c = msg[i] & 0xFF;
                if (c > 0x20 && c < 0x7F && c != '.' && c != '\\') {
                    text.append(Character.toLowerCase((char) c));
                } else {
                    text.append('\\').append(String.format("%03d", c));
                }
            }
            pos += len + 1;
        }
    }

    /**
     * An authoritative answer to {@code q} with {@code addresses} (each A or AAAA as its length
     * says), TTL {@code ttl} seconds. When they do not fit in {@code limit} bytes, as many as fit are
     * written and TC is set, so the client retries over TCP.
     */
    static byte[] answer(Question q, List<InetAddress> addresses, int ttl, int limit) {
        int fixed = HEADER + q.wireName().length + 4;
        int fit = addresses.size();
        int size = fixed;
        for (int i = 0; i < addresses.size(); i++) {
            int rr = 12 + addresses.get(i).getAddress().length;
            if (size + rr > limit) {
                fit = i;
                break;
            }
            size += rr;
        }
        boolean truncated = fit < addresses.size();
        byte[] out = new byte[size];
        header(out, q, (truncated ? TC : 0) | AA, fit);
        int pos = question(out, q);
        for (int i = 0; i < fit; i++) {
            byte[] a = addresses.get(i).getAddress();
            pos = put16(out, pos, 0xC000 | HEADER);
            pos = put16(out, pos, a.length == 4 ? TYPE_A : TYPE_AAAA);
            pos = put16(out, pos, CLASS_IN);
            pos = put16(out, pos, ttl >>> 16);
            pos = put16(out, pos, ttl & 0xFFFF);
            pos = put16(out, pos, a.length);
            System.arraycopy(a, 0, out, pos, a.length);
            pos += a.length;
        }
        return out;
    }

    /** An answer with only a header: {@code rcode} for the query with {@code id} (FORMERR, SERVFAIL). */
    static byte[] error(int id, int rcode) {
        byte[] out = new byte[HEADER];
        put16(out, 0, id);
        put16(out, 2, QR | RA | (rcode & 0xF));
        return out;
    }

    private static void header(byte[] out, Question q, int extraFlags, int answers) {
        put16(out, 0, q.id());
        put16(out, 2, QR | RA | (q.flags() & (0x7800 | RD)) | extraFlags);
        put16(out, 4, 1);
        put16(out, 6, answers);
    }

    private static int question(byte[] out, Question q) {
        System.arraycopy(q.wireName(), 0, out, HEADER, q.wireName().length);
        int pos = HEADER + q.wireName().length;
        pos = put16(out, pos, q.type());
        return put16(out, pos, q.qclass());
    }

    static int u16(byte[] b, int at) {
        return ((b[at] & 0xFF) << 8) | (b[at + 1] & 0xFF);
    }

    private static int put16(byte[] b, int at, int v) {
        b[at] = (byte) (v >>> 8);
        b[at + 1] = (byte) v;
        return at + 2;
    }
}
