package dev.wisp.wireguard;

import java.time.Duration;

/**
 * The protocol's timer constants. {@link #DEFAULTS} are WireGuard's and are what every device uses;
 * shorter values exist only so tests can watch a rekey happen within seconds.
 */
public record Timers(Duration rekeyAfterTime, Duration rejectAfterTime, Duration rekeyAttemptTime,
        Duration rekeyTimeout, Duration keepaliveTimeout, long rekeyAfterMessages, long rejectAfterMessages) {
    public static final Timers DEFAULTS = new Timers(Duration.ofSeconds(120), Duration.ofSeconds(180),
            Duration.ofSeconds(90), Duration.ofSeconds(5), Duration.ofSeconds(10), 1L << 60, -(1L << 13) - 1);

    /** DEFAULTS with a shorter rekey/reject time (reject = rekey × 1.5), for tests only. */
    public static Timers forTestsWithRekeyAfter(Duration rekeyAfter) {
        return new Timers(rekeyAfter, rekeyAfter.multipliedBy(3).dividedBy(2), DEFAULTS.rekeyAttemptTime,
                DEFAULTS.rekeyTimeout, DEFAULTS.keepaliveTimeout, DEFAULTS.rekeyAfterMessages,
                DEFAULTS.rejectAfterMessages);
    }
}
