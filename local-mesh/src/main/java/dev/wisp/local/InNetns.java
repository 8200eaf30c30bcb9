package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import dev.wisp.linux.Libc;
import java.io.IOException;
import java.io.InputStream;
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
 * Runs code inside a network namespace of {@code /run/netns} from this JVM: a fresh platform thread
 * enters it with {@code setns(2)} (which moves only the calling OS thread, hence never a virtual
 * thread), so the sockets it creates live there whichever thread uses them later. This is how the
 * mesh reaches loopback-only endpoints (the agents' admin on 127.0.0.1:15000 of their node) without
 * widening them.
 */
public final class InNetns {
    private InNetns() {}

    /** Runs {@code task} inside {@code netns}, waiting at most {@code timeout}. */
    public static <T> T call(String netns, Callable<T> task, Duration timeout) throws IOException {
        requireNonNull(netns, "netns");
        requireNonNull(task, "task");
        CompletableFuture<T> result = new CompletableFuture<>();
        Thread.ofPlatform().name("wisp-netns-" + netns).daemon().start(() -> {
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
        try {
            return result.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new IOException("in network namespace " + netns + ": " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            throw new IOException("in network namespace " + netns + ": no answer within " + timeout, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /**
     * {@code GET path} (HTTP/1.0) from 127.0.0.1:{@code port} inside {@code netns}; the body of a 200
     * answer, or an {@link IOException} naming the status line.
     */
    public static String httpGet(String netns, int port, String path) throws IOException {
        requireNonNull(path, "path");
        if (!path.startsWith("/") || path.chars().anyMatch(c -> c <= ' ')) {
            throw new IllegalArgumentException("path '" + path + "' must start with / and hold no spaces");
        }
        return call(netns, () -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 2000);
                s.setSoTimeout(5000);
                OutputStream out = s.getOutputStream();
                out.write(("GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                out.flush();
                InputStream in = s.getInputStream();
                String response = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                int body = response.indexOf("\r\n\r\n");
                if (!response.startsWith("HTTP/1.1 200") && !response.startsWith("HTTP/1.0 200")) {
                    throw new IOException("GET 127.0.0.1:" + port + path + " in " + netns + ": " + response.lines()
                            .findFirst().orElse("no response"));
                }
                return body < 0 ? "" : response.substring(body + 4);
            }
        }, Duration.ofSeconds(10));
    }
}
