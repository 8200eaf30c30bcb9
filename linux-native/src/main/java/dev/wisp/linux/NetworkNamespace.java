package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs code inside another network namespace: a fresh platform thread enters it with
 * {@code setns(2)} (which moves only the calling OS thread, hence not a virtual thread), runs the
 * body, and returns to its own namespace before it ends. Sockets the body creates stay in the
 * namespace they were created in, whichever thread uses them afterwards. This is the one place in
 * Wisp that enters a network namespace from the JVM.
 */
public final class NetworkNamespace {
    private NetworkNamespace() {}

    /** What runs inside the namespace. */
    @FunctionalInterface
    public interface Body<T> {
        T run() throws Exception;
    }

    /** The path of the namespace {@code ip netns} knows as {@code name}: {@code /run/netns/NAME}. */
    public static Path named(String name) {
        requireNonNull(name, "name");
        if (name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..")) {
            throw new IllegalArgumentException("'" + name + "' is not a network namespace name");
        }
        return Path.of("/run/netns", name);
    }

    /**
     * Starts {@code body} on a new (daemon) platform thread that has entered {@code netns} (a path
     * such as {@code /run/netns/NAME}); the future ends with the body's result or failure (or the
     * failure to enter the namespace) once the thread is back in its own namespace.
     */
    public static <T> CompletableFuture<T> start(Path netns, Body<T> body) {
        requireNonNull(netns, "netns");
        requireNonNull(body, "body");
        CompletableFuture<T> result = new CompletableFuture<>();
        Thread.ofPlatform().name("wisp-netns-" + netns.getFileName()).daemon().start(() -> {
            // The body's outcome stands even if returning home fails: the thread ends right after.
            Outcome<T> outcome = null;
            try {
                int home = Libc.open("/proc/thread-self/ns/net", Libc.O_RDONLY | Libc.O_CLOEXEC);
                try {
                    int target = Libc.open(netns.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
                    try {
                        Libc.setns(target, Libc.CLONE_NEWNET);
                    } catch (NativeException e) {
                        throw e.errno() == Errno.EPERM
                                ? new NativeException("setns(" + netns + ")", e.errno(),
                                        "entering another network namespace needs CAP_SYS_ADMIN")
                                : e;
                    } finally {
                        Libc.close(target);
                    }
                    try {
                        outcome = new Outcome<>(body.run(), null);
                    } catch (Throwable e) {
                        outcome = new Outcome<>(null, e);
                    } finally {
                        Libc.setns(home, Libc.CLONE_NEWNET);
                    }
                } finally {
                    Libc.close(home);
                }
            } catch (Throwable e) {
                if (outcome == null) {
                    outcome = new Outcome<>(null, e);
                }
            }
            if (outcome.failure() == null) {
                result.complete(outcome.value());
            } else {
                result.completeExceptionally(outcome.failure());
            }
        });
        return result;
    }

    /**
     * Runs {@code body} inside {@code netns} (see {@link #start}), waits for it and returns its
     * result.
     *
     * @throws IOException when the namespace cannot be entered or the body fails (the body's
     *     failure is the cause, its message part of this one, which names the namespace)
     */
    public static <T> T call(Path netns, Body<T> body) throws IOException {
        return await(netns, start(netns, body), null);
    }

    /**
     * As {@link #call(Path, Body)}, waiting at most {@code timeout}; a body still running then goes
     * on, on its daemon thread, and this throws an {@link IOException} naming the namespace.
     */
    public static <T> T call(Path netns, Body<T> body, Duration timeout) throws IOException {
        requireNonNull(timeout, "timeout");
        return await(netns, start(netns, body), timeout);
    }

    private record Outcome<T>(T value, Throwable failure) {}

    private static <T> T await(Path netns, CompletableFuture<T> result, Duration timeout) throws IOException {
        try {
            return timeout == null ? result.get() : result.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while in network namespace " + netns, e);
        } catch (TimeoutException e) {
            throw new IOException("in network namespace " + netns + ": no answer within " + timeout, e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            String why = cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
            throw new IOException("in network namespace " + netns + ": " + why, cause);
        }
    }
}
