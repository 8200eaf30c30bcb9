package dev.wisp.testing;

import dev.wisp.linux.NetworkNamespace;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs test code inside a network namespace of {@code /run/netns} through {@link NetworkNamespace}
 * (a fresh platform thread that entered it), with what tests want on top: the task's own failure
 * rethrown as it was thrown, and an {@link AssertionError} when it does not finish in time. HTTP
 * GETs from inside a namespace: {@code dev.wisp.local.InNetns}.
 */
public final class Netns {
    private Netns() {}

    /** Starts {@code task} on a new daemon thread inside {@code netns}; its result or failure. */
    public static <T> CompletableFuture<T> start(String netns, Callable<T> task) {
        return NetworkNamespace.start(NetworkNamespace.named(netns), task::call);
    }

    /**
     * Runs {@code task} inside {@code netns} and waits for it (at most {@code timeout}); a failure of
     * the task is rethrown as it was thrown.
     */
    public static <T> T call(String netns, Callable<T> task, Duration timeout) throws Exception {
        return result(start(netns, task), netns, timeout);
    }

    /**
     * Waits (at most {@code timeout}) for a task {@link #start started} in {@code netns}; its failure
     * is rethrown as it was thrown.
     */
    public static <T> T result(Future<T> task, String netns, Duration timeout) throws Exception {
        try {
            return task.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception cause) {
                throw cause;
            }
            throw new AssertionError("task in netns " + netns + " failed", e.getCause());
        } catch (TimeoutException e) {
            throw new AssertionError("task in netns " + netns + " did not finish within " + timeout, e);
        }
    }
}
