package dev.wisp.cli;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;

/**
 * How a long-running command ({@code wisp node}, {@code wisp waypoint}, {@code wisp control-plane})
 * holds the foreground: until SIGTERM/SIGINT, whose shutdown hook runs the command's stop (drain,
 * close) before the JVM exits.
 */
final class Foreground {
    private Foreground() {}

    /**
     * Blocks the calling thread until the JVM shuts down; the hook thread {@code hookName} runs
     * {@code stop} first.
     */
    static void holdUntilStopped(String hookName, Runnable stop) throws InterruptedException {
        holdUntilStopped(hookName, stop, new CompletableFuture<>());
    }

    /**
     * As {@link #holdUntilStopped(String, Runnable)}, returning also once {@code ended} completes (the
     * command stopped by itself: an agent that handed over to a new one); the caller then exits, and
     * the hook's {@code stop} must be idempotent.
     */
    static void holdUntilStopped(String hookName, Runnable stop, CompletionStage<?> ended)
            throws InterruptedException {
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stop.run();
            stopped.countDown();
        }, hookName));
        ended.whenComplete((v, e) -> stopped.countDown());
        stopped.await();
    }
}
