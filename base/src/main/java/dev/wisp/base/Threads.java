package dev.wisp.base;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

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

    /** A wait for something stopping on threads of its own, such as a gRPC server's or channel's. */
    @FunctionalInterface
    public interface Termination {
        boolean await(long timeout, TimeUnit unit) throws InterruptedException;
    }

    /**
     * Waits at most {@code within} for {@code termination} (for instance {@code server::awaitTermination}),
     * and says whether it came; an interrupt ends the wait and is kept, as in {@link #awaitEnd}.
     */
    public static boolean awaitTermination(Termination termination, Duration within) {
        requireNonNull(termination, "termination");
        try {
            return termination.await(within.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
