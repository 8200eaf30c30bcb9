package dev.wisp.node.xds;

import java.time.Duration;
import java.util.random.RandomGenerator;

/**
 * Exponential reconnect delays with jitter (pure): {@code initial × 2^attempt}, capped at
 * {@code max}, then spread by ±{@code jitter} so that agents cut off together do not reconnect in
 * lockstep.
 */
public record Backoff(Duration initial, Duration max, double jitter) {
    /** 500 ms doubling to 30 s, ±20 %. */
    public static final Backoff DEFAULT = new Backoff(Duration.ofMillis(500), Duration.ofSeconds(30), 0.2);

    public Backoff {
        if (initial.isNegative() || initial.isZero() || max.compareTo(initial) < 0 || jitter < 0 || jitter >= 1) {
            throw new IllegalArgumentException("backoff needs 0 < initial <= max and 0 <= jitter < 1");
        }
    }

    /** The delay before reconnect attempt {@code attempt} (0 = first retry). */
    public Duration delay(int attempt, RandomGenerator random) {
        double base = initial.toNanos() * Math.pow(2, Math.min(attempt, 62));
        double capped = Math.min(base, max.toNanos());
        double spread = 1 + jitter * (2 * random.nextDouble() - 1);
        return Duration.ofNanos((long) (capped * spread));
    }
}
