package dev.wisp.controlplane.ca;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/**
 * A token bucket per node: {@code burst} requests at once, then {@code perSecond} a second. Certificate
 * requests are cheap for an agent to send and cost the CA a signature each, so one node (one stolen
 * credential) must not be able to keep the CA busy for every other node.
 *
 * <p>Thread-safe: each node's bucket is updated under its own monitor; the map holds one small entry
 * per authenticated node name.
 */
final class NodeRateLimit {
    private final double burst;
    private final double perNano;
    private final LongSupplier nanoClock;
    private final Map<String, Bucket> buckets = new ConcurrentHashMap<>();

    private static final class Bucket {
        double tokens;
        long at;

        Bucket(double tokens, long at) {
            this.tokens = tokens;
            this.at = at;
        }
    }

    NodeRateLimit(int burst, double perSecond, LongSupplier nanoClock) {
        if (burst < 1 || perSecond <= 0) {
            throw new IllegalArgumentException("rate limit needs burst >= 1 and perSecond > 0, not " + burst + ", "
                    + perSecond);
        }
        this.burst = burst;
        this.perNano = perSecond / 1e9;
        this.nanoClock = nanoClock;
    }

    /** Takes one request of {@code node}'s allowance; false when it has none left now. */
    boolean tryAcquire(String node) {
        long now = nanoClock.getAsLong();
        Bucket b = buckets.computeIfAbsent(node, n -> new Bucket(burst, now));
        synchronized (b) {
            b.tokens = Math.min(burst, b.tokens + (now - b.at) * perNano);
            b.at = now;
            if (b.tokens < 1) {
                return false;
            }
            b.tokens -= 1;
            return true;
        }
    }
}
