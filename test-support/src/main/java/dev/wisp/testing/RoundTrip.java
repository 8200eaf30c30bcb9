package dev.wisp.testing;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * The echo round trip the tunnel tests make: {@code size} seeded pseudo-random bytes written into a
 * socket (then a half-close) while a second thread reads the echo to EOF, with a SHA-256 of each
 * side, so a test asserts that every byte came back unchanged and in order.
 *
 * @param sent the SHA-256 (hex) of what was written
 * @param received the SHA-256 (hex) of what was read back
 * @param bytesReceived how many bytes were read before EOF
 */
public record RoundTrip(String sent, String received, long bytesReceived) {
    private static final int CHUNK = 256 * 1024;

    /**
     * Writes {@code size} bytes (seeded with {@code size}) into {@code socket}, half-closes it and
     * reads its input to EOF within {@code timeoutSeconds}; closes the socket.
     */
    public static RoundTrip echo(Socket socket, long size, long timeoutSeconds) throws Exception {
        MessageDigest sent = MessageDigest.getInstance("SHA-256");
        MessageDigest got = MessageDigest.getInstance("SHA-256");
        try (socket; ExecutorService exec = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<Long> reader = exec.submit(() -> {
                InputStream in = socket.getInputStream();
                byte[] buf = new byte[CHUNK];
                long total = 0;
                for (int n; (n = in.read(buf)) >= 0;) {
                    got.update(buf, 0, n);
                    total += n;
                }
                return total;
            });
            OutputStream out = socket.getOutputStream();
            byte[] chunk = new byte[CHUNK];
            Random rnd = new Random(size);
            for (long left = size; left > 0;) {
                rnd.nextBytes(chunk);
                int n = (int) Math.min(chunk.length, left);
                out.write(chunk, 0, n);
                sent.update(chunk, 0, n);
                left -= n;
            }
            socket.shutdownOutput();
            long total = reader.get(timeoutSeconds, TimeUnit.SECONDS);
            return new RoundTrip(HexFormat.of().formatHex(sent.digest()), HexFormat.of().formatHex(got.digest()),
                    total);
        }
    }
}
