package dev.wisp.wireguard.device;

import java.net.InetAddress;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * Per-source-address token buckets for handshake messages while under load: 20 per second with a
 * burst of 5, as wireguard-go allows. Bounded: at most {@link #MAX_ENTRIES} sources are tracked;
 * idle buckets are swept. Guarded by its own monitor.
 */
final class RateLimiter {
    static final int MAX_ENTRIES = 65_536;
    private static final long PACKET_COST = 1_000_000_000L / 20;
    private static final long BURST = 5 * PACKET_COST;
    private static final long IDLE_NANOS = 1_000_000_000L;

    private static final class Bucket {
        long tokens;
        long lastNanos;
    }

    private final Map<InetAddress, Bucket> buckets = new HashMap<>();
    private long lastSweep;

    synchronized boolean allow(InetAddress source, long now) {
        if (now - lastSweep > IDLE_NANOS) {
            for (Iterator<Bucket> it = buckets.values().iterator(); it.hasNext();) {
                if (now - it.next().lastNanos > IDLE_NANOS) {
                    it.remove();
                }
            }
            lastSweep = now;
        }
        Bucket b = buckets.get(source);
        if (b == null) {
            if (buckets.size() >= MAX_ENTRIES) {
                return false;
            }
            b = new Bucket();
            b.tokens = BURST - PACKET_COST;
            b.lastNanos = now;
            buckets.put(source, b);
            return true;
        }
        b.tokens = Math.min(BURST, b.tokens + (now - b.lastNanos));
        b.lastNanos = now;
        if (b.tokens >= PACKET_COST) {
            b.tokens -= PACKET_COST;
            return true;
        }
        return false;
    }

    synchronized int size() {
        return buckets.size();
    }
}
