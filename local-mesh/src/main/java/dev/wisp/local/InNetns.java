package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import dev.wisp.linux.NetworkNamespace;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * HTTP GETs and POSTs from inside a network namespace of {@code /run/netns}, through {@link NetworkNamespace}
 * (a fresh platform thread that entered it): this is how the mesh, the CLI and the tests reach
 * loopback-only endpoints (the agents' admin on 127.0.0.1:15000 of their node) without widening
 * them.
 */
public final class InNetns {
    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    private InNetns() {}

    /**
     * {@code GET path} (HTTP/1.0) from 127.0.0.1:{@code port} inside {@code netns}; the body of a 200
     * answer, or an {@link IOException} naming the namespace and the status line.
     */
    public static String httpGet(String netns, int port, String path) throws IOException {
        return httpGet(netns, new InetSocketAddress("127.0.0.1", port), path);
    }

    /**
     * {@code GET path} (HTTP/1.0) from {@code server} inside {@code netns} (connect within 2 s, reads
     * within 5 s, all within 10 s); the body of a 200 answer, or an {@link IOException} naming the
     * namespace and the status line.
     */
    public static String httpGet(String netns, InetSocketAddress server, String path) throws IOException {
        return request(netns, server, "GET", path);
    }

    /**
     * {@code POST path} (HTTP/1.0, no body) from {@code server} inside {@code netns}, or in this
     * process's own namespace when {@code netns} is null; as {@link #httpGet}.
     */
    public static String httpPost(String netns, InetSocketAddress server, String path) throws IOException {
        return request(netns, server, "POST", path);
    }

    private static String request(String netns, InetSocketAddress server, String method, String path)
            throws IOException {
        requireNonNull(server, "server");
        requireNonNull(path, "path");
        if (!path.startsWith("/") || path.chars().anyMatch(c -> c <= ' ')) {
            throw new IllegalArgumentException("path '" + path + "' must start with / and hold no spaces");
        }
        String where = server.getHostString() + ":" + server.getPort() + path;
        NetworkNamespace.Body<String> call = () -> {
            try (Socket s = new Socket()) {
                s.connect(server, 2000);
                s.setSoTimeout(5000);
                OutputStream out = s.getOutputStream();
                out.write((method + " " + path + " HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
                out.flush();
                String response = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                int body = response.indexOf("\r\n\r\n");
                if (!response.startsWith("HTTP/1.1 200") && !response.startsWith("HTTP/1.0 200")) {
                    String text = body < 0 ? "" : response.substring(body + 4).strip();
                    throw new IOException(method + " " + where + ": " + response.lines().findFirst().orElse(
                            "no response") + (text.isEmpty() ? "" : ": " + text));
                }
                return body < 0 ? "" : response.substring(body + 4);
            }
        };
        if (netns == null) {
            try {
                return call.run();
            } catch (IOException | RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IOException(e);
            }
        }
        return NetworkNamespace.call(NetworkNamespace.named(netns), call, TIMEOUT);
    }
}
