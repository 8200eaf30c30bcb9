package dev.wisp.wireguard.device;

import java.time.Instant;

/** Time as the protocol core sees it: injected, so tests drive timers without sleeping. */
@FunctionalInterface
public interface Clock {
    /** The JVM's clocks. */
    Clock SYSTEM = System::nanoTime;

    /** Monotonic nanoseconds (timers). */
    long nanoTime();

    /**
     * Wall-clock time (TAI64N timestamps, last-handshake times): the system's, unless a test's clock
     * says otherwise.
     */
    default Instant now() {
        return Instant.now();
    }
}
