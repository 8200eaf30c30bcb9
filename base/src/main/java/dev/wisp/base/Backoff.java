package dev.wisp.base;

import static java.util.Objects.requireNonNull;

import java.time.Duration;

/**
 * Exponential retry delays with jitter, the one backoff of the mesh (reconnecting to the control
 * plane, retrying a certificate signing): {@code initial × 2^attempt}, capped at {@code max}, then
 * spread by ±{@code jitter}, so that agents cut off together do not retry in lockstep even once
 * they have reached the cap. Pure: the random draw is an argument.
 */
public record Backoff(Duration initial, Duration max, double jitter) {

    public Backoff {
        requireNonNull(initial, "initial");
        requireNonNull(max, "max");
        if (initial.isNegative() || initial.isZero() || max.compareTo(initial) < 0 || !(jitter >= 0 && jitter < 1)) {
            throw new IllegalArgumentException("backoff needs 0 < initial <= max and 0 <= jitter < 1, not initial "
                    + initial + ", max " + max + ", jitter " + jitter);
        }
    }

    /**
     * The delay before retry {@code attempt}.
     *
     * @param attempt 0 for the first retry after a failure, 1 for the second …
     * @param draw a uniform random draw in [0, 1): 0 gives the low end of the spread, 0.5 its middle
     */
    public Duration delay(int attempt, double draw) {
        if (attempt < 0) {
            throw new IllegalArgumentException("attempt " + attempt + " is negative");
        }
        double base = initial.toNanos() * Math.pow(2, Math.min(attempt, 62));
        double capped = Math.min(base, max.toNanos());
        double spread = 1 + jitter * (2 * draw - 1);
        return Duration.ofNanos((long) (capped * spread));
    }
}
