package dev.wisp.spiffe.manager;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs a task after a delay. The {@link CertificateManager} takes one so that tests can drive
 * renewals with a manual scheduler and a controllable clock instead of waiting.
 */
@FunctionalInterface
public interface Scheduler {
    /** A scheduled task that can be cancelled. */
    @FunctionalInterface
    interface Task {
        void cancel();
    }

    Task schedule(Duration delay, Runnable task);

    /** A scheduler over {@code executor}; the caller keeps ownership of the executor. */
    static Scheduler of(ScheduledExecutorService executor) {
        requireNonNull(executor, "executor");
        return (delay, task) -> {
            ScheduledFuture<?> f = executor.schedule(task, delay.toNanos(), TimeUnit.NANOSECONDS);
            return () -> f.cancel(false);
        };
    }
}
