package dev.wisp.wireguard.noise;

import dev.wisp.wireguard.crypto.LittleEndian;

/**
 * WireGuard message layouts: a type byte, three zero bytes, then fixed little-endian fields
 * ({@link LittleEndian}). Offsets here are the single source for the builders and parsers.
 */
public final class Messages {
    public static final int TYPE_INITIATION = 1;
    public static final int TYPE_RESPONSE = 2;
    public static final int TYPE_COOKIE_REPLY = 3;
    public static final int TYPE_TRANSPORT = 4;

    public static final int INITIATION_LEN = 148;
    public static final int RESPONSE_LEN = 92;
    public static final int COOKIE_REPLY_LEN = 64;
    /** Transport header: type, receiver index, counter. */
    public static final int TRANSPORT_HEADER_LEN = 16;
    /** A keepalive: header plus the 16-byte tag of an empty plaintext. */
    public static final int TRANSPORT_MIN_LEN = 32;

    // Initiation offsets.
    public static final int INIT_SENDER = 4;
    public static final int INIT_EPHEMERAL = 8;
    public static final int INIT_STATIC = 40;
    public static final int INIT_TIMESTAMP = 88;
    public static final int INIT_MAC1 = 116;
    public static final int INIT_MAC2 = 132;

    // Response offsets.
    public static final int RESP_SENDER = 4;
    public static final int RESP_RECEIVER = 8;
    public static final int RESP_EPHEMERAL = 12;
    public static final int RESP_EMPTY = 44;
    public static final int RESP_MAC1 = 60;
    public static final int RESP_MAC2 = 76;

    // Cookie reply offsets.
    public static final int COOKIE_RECEIVER = 4;
    public static final int COOKIE_NONCE = 8;
    public static final int COOKIE_ENCRYPTED = 32;

    // Transport offsets.
    public static final int TRANSPORT_RECEIVER = 4;
    public static final int TRANSPORT_COUNTER = 8;

    private Messages() {}

    /** The message type, or -1 when the three reserved bytes are not zero or the packet is empty. */
    public static int type(byte[] p, int off, int len) {
        if (len < 4 || p[off + 1] != 0 || p[off + 2] != 0 || p[off + 3] != 0) {
            return -1;
        }
        return p[off] & 0xff;
    }

    public static int getInt(byte[] b, int off) {
        return LittleEndian.getInt(b, off);
    }

    public static void putInt(byte[] b, int off, int v) {
        LittleEndian.putInt(b, off, v);
    }

    public static long getLong(byte[] b, int off) {
        return LittleEndian.getLong(b, off);
    }

    public static void putLong(byte[] b, int off, long v) {
        LittleEndian.putLong(b, off, v);
    }
}
