package dev.wisp.wireguard.noise;

import java.time.Instant;
import java.util.Arrays;

/**
 * TAI64N timestamps as WireGuard sends them in initiations: 8 bytes of big-endian seconds offset by
 * 2^62 + 10, then 4 bytes of big-endian nanoseconds. The nanoseconds are rounded down to a multiple
 * of 2^24 (about 16.8 ms) so that a timestamp does not leak a fine-grained clock, as wireguard-go
 * does.
 */
public final class Tai64n {
    public static final int LEN = 12;
    private static final long BASE = 0x400000000000000aL;
    private static final int WHITENER = 0x1000000;

    private Tai64n() {}

    public static byte[] of(Instant now) {
        byte[] b = new byte[LEN];
        long secs = BASE + now.getEpochSecond();
        int nanos = now.getNano() - now.getNano() % WHITENER;
        for (int i = 0; i < 8; i++) {
            b[i] = (byte) (secs >>> (56 - 8 * i));
        }
        for (int i = 0; i < 4; i++) {
            b[8 + i] = (byte) (nanos >>> (24 - 8 * i));
        }
        return b;
    }

    /** Whether {@code a} is strictly later than {@code b} (unsigned big-endian comparison). */
    public static boolean after(byte[] a, byte[] b) {
        return Arrays.compareUnsigned(a, b) > 0;
    }
}
