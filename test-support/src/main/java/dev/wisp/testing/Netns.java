package dev.wisp.testing;

import dev.wisp.linux.Libc;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Runs test code inside a network namespace of {@code /run/netns}: a fresh platform thread enters it
 * with {@code setns(2)}, so the sockets it creates live there, whichever thread uses them later.
 * A platform thread is required: {@code setns} moves only the calling OS thread.
 */
public final class Netns {
    private Netns() {}

    /** Starts {@code task} on a new daemon thread inside {@code netns}; its result or failure. */
    public static <T> CompletableFuture<T> start(String netns, Callable<T> task) {
        CompletableFuture<T> result = new CompletableFuture<>();
        Thread.ofPlatform().name("netns-" + netns).daemon().start(() -> {
            try {
                int fd = Libc.open("/run/netns/" + netns, Libc.O_RDONLY | Libc.O_CLOEXEC);
                try {
                    Libc.setns(fd, Libc.CLONE_NEWNET);
                } finally {
                    Libc.close(fd);
                }
                result.complete(task.call());
            } catch (Throwable e) {
                result.completeExceptionally(e);
            }
        });
        return result;
    }

    /**
     * Runs {@code task} inside {@code netns} and waits for it (at most {@code timeout}); a failure of
     * the task is rethrown as it was thrown.
     */
    public static <T> T call(String netns, Callable<T> task, Duration timeout) throws Exception {
        try {
            return start(netns, task).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception cause) {
                throw cause;
            }
            throw new AssertionError("task in netns " + netns + " failed", e.getCause());
        } catch (TimeoutException e) {
            throw new AssertionError("task in netns " + netns + " did not finish within " + timeout, e);
        }
    }

    /**
     * {@code GET path} over HTTP/1.0 from inside {@code netns} to {@code server}; the body of a 200
     * answer, an {@link IOException} naming the status line otherwise.
     */
    public static String httpGet(String netns, InetSocketAddress server, String path) throws Exception {
        return call(netns, () -> {
            try (Socket s = new Socket()) {
                s.connect(server, 2000);
                s.setSoTimeout(5000);
                OutputStream out = s.getOutputStream();
                out.write(("GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.flush();
                String response = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!response.startsWith("HTTP/1.1 200") && !response.startsWith("HTTP/1.0 200")) {
                    throw new IOException("GET " + path + " from " + server + " in " + netns + ": "
                            + response.lines().findFirst().orElse("no response"));
                }
                int body = response.indexOf("\r\n\r\n");
                return body < 0 ? "" : response.substring(body + 4);
            }
        }, Duration.ofSeconds(60));
    }
}
