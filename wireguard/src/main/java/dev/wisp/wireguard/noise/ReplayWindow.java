package dev.wisp.wireguard.noise;

/**
 * The anti-replay window of RFC 6479 as WireGuard sizes it: a ring of 128 64-bit blocks, of which
 * 127 are usable, so counters up to 8128 behind the highest one seen are still accepted once. Not
 * thread-safe: the keypair that owns it serialises access.
 */
public final class ReplayWindow {
    private static final int BLOCKS = 128;
    /** How far behind the highest counter a packet may be and still be accepted. */
    public static final long WINDOW = (BLOCKS - 1) * 64L;

    private final long[] bitmap = new long[BLOCKS];
    private long last;

    /**
     * Records {@code counter} and returns true the first time it is seen inside the window and below
     * {@code limit} (unsigned); false for a replay, a counter too old, or one past the limit.
     */
    public boolean accept(long counter, long limit) {
        if (Long.compareUnsigned(counter, limit) >= 0) {
            return false;
        }
        long block = counter >>> 6;
        if (Long.compareUnsigned(counter, last) > 0) {
            long current = last >>> 6;
            long diff = Math.min(block - current, BLOCKS);
            for (long i = 1; i <= diff; i++) {
                bitmap[(int) ((current + i) & (BLOCKS - 1))] = 0;
            }
            last = counter;
        } else if (last - counter > WINDOW) {
            return false;
        }
        int index = (int) (block & (BLOCKS - 1));
        long bit = 1L << (counter & 63);
        if ((bitmap[index] & bit) != 0) {
            return false;
        }
        bitmap[index] |= bit;
        return true;
    }
}
