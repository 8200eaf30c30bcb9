package dev.wisp.base;

import static java.util.Objects.requireNonNull;

import java.time.Duration;

/** How Wisp's components wait for their own threads when they close. Stateless. */
public final class Threads {
    private Threads() {}

    /**
     * Waits at most {@code within} for {@code thread} to end, and says whether it did. An interrupt of
     * the waiting thread ends the wait and is kept (its flag set again), so a closing component never
     * swallows its caller's interrupt.
     */
    public static boolean awaitEnd(Thread thread, Duration within) {
        requireNonNull(thread, "thread");
        requireNonNull(within, "within");
        try {
            return thread.join(within);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
