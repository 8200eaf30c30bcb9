package dev.wisp.spiffe.manager;

import java.time.Duration;

/**
 * Retry delays: 500 ms doubling per failure, scaled by a random factor in [0.8, 1.2), never more
 * than 150 s. Pure: the random draw is an argument.
 */
record Backoff(Duration initial, double multiplier, double jitter, Duration max) {
    static final Backoff DEFAULT = new Backoff(Duration.ofMillis(500), 2.0, 0.2, Duration.ofSeconds(150));

    /**
     * @param failures consecutive failures so far, at least 1
     * @param random01 a uniform draw in [0, 1)
     */
    Duration delay(int failures, double random01) {
        double base = initial.toNanos() * Math.pow(multiplier, Math.min(failures - 1, 62));
        double jittered = base * (1 - jitter + 2 * jitter * random01);
        return Duration.ofNanos((long) Math.min(jittered, max.toNanos()));
    }
}
