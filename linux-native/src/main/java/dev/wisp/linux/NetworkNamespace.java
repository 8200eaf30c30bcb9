package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

/**
 * Runs code inside another network namespace: a fresh platform thread enters it with
 * {@code setns(2)} (which moves only the calling OS thread, hence not a virtual thread), runs the
 * body, and returns to its own namespace before it ends. Sockets the body creates stay in the
 * namespace they were created in, whichever thread uses them afterwards.
 */
public final class NetworkNamespace {
    private NetworkNamespace() {}

    /** What runs inside the namespace. */
    @FunctionalInterface
    public interface Body<T> {
        T run() throws Exception;
    }

    /**
     * Runs {@code body} on a platform thread that has entered {@code netns} (a path such as
     * {@code /var/run/netns/NAME}), waits for it and returns its result.
     *
     * @throws IOException when the namespace cannot be entered or the body fails (the body's
     *     failure is the cause, its message part of this one)
     */
    public static <T> T call(Path netns, Body<T> body) throws IOException {
        requireNonNull(netns, "netns");
        requireNonNull(body, "body");
        CompletableFuture<T> result = new CompletableFuture<>();
        Thread t = Thread.ofPlatform().name("wisp-setns").start(() -> {
            try {
                int home = Libc.open("/proc/thread-self/ns/net", Libc.O_RDONLY | Libc.O_CLOEXEC);
                try {
                    int target = Libc.open(netns.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
                    try {
                        Libc.setns(target, Libc.CLONE_NEWNET);
                    } finally {
                        Libc.close(target);
                    }
                    try {
                        result.complete(body.run());
                    } finally {
                        Libc.setns(home, Libc.CLONE_NEWNET);
                    }
                } finally {
                    Libc.close(home);
                }
            } catch (Throwable e) {
                result.completeExceptionally(e);
            }
        });
        try {
            return result.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while in network namespace " + netns, e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            String why = cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
            throw new IOException("in network namespace " + netns + ": " + why, cause);
        } finally {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
