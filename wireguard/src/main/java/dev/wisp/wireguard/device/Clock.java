package dev.wisp.wireguard.device;

import java.time.Instant;

/** Time as the protocol core sees it: injected, so tests drive timers without sleeping. */
public interface Clock {
    /** Monotonic nanoseconds (timers). */
    long nanoTime();

    /** Wall-clock time (TAI64N timestamps, last-handshake times). */
    Instant now();

    Clock SYSTEM = new Clock() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public Instant now() {
            return Instant.now();
        }
    };
}
