package dev.wisp.wireguard.device;

import dev.wisp.wireguard.Timers;

/**
 * {@link Timers} as the engine uses them on every packet: nanoseconds and message counts, computed
 * once per device.
 */
record Timing(long rekeyAfter, long rejectAfter, long rekeyTimeout, long keepaliveTimeout,
        int maxHandshakeAttempts, long rekeyAfterMessages, long rejectAfterMessages) {
    /** Jitter added to each handshake retransmission, as wireguard-go adds up to a third of a second. */
    static final long RETRANSMIT_JITTER_NANOS = 333_000_000L;

    static Timing of(Timers t) {
        long rekeyTimeout = t.rekeyTimeout().toNanos();
        return new Timing(t.rekeyAfterTime().toNanos(), t.rejectAfterTime().toNanos(), rekeyTimeout,
                t.keepaliveTimeout().toNanos(), (int) (t.rekeyAttemptTime().toNanos() / rekeyTimeout),
                t.rekeyAfterMessages(), t.rejectAfterMessages());
    }

    /** When keys derived now are zeroed if no new handshake replaces them (REJECT_AFTER_TIME × 3). */
    long zeroKeysAfter(long now) {
        return now + 3 * rejectAfter;
    }
}
