package dev.wisp.e2e;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;

/**
 * Runs test code inside a network namespace: a fresh platform thread enters it with
 * {@code setns(2)} and creates its sockets there (they stay in that namespace whichever thread uses
 * them later).
 */
final class Netns {
    private Netns() {}

    static <T> T in(String netns, Callable<T> body) throws Exception {
        return dev.wisp.testing.Netns.call(netns, body, java.time.Duration.ofSeconds(60));
    }

    /** GET {@code path} from an HTTP server on 127.0.0.1:{@code port} of {@code netns}; the body. */
    static String httpGet(String netns, int port, String path) throws Exception {
        return in(netns, () -> {
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
                    throw new IOException("GET " + path + " in " + netns + ": " + response.lines().findFirst()
                            .orElse("no response"));
                }
                return body < 0 ? "" : response.substring(body + 4);
            }
        });
    }
}
