package dev.wisp.cli.demo;

import dev.wisp.linux.NetworkNamespace;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

/**
 * One UDP echo between two pods, with sockets the demo opens inside the pods' network namespaces
 * (not in the pods' cgroups, so eBPF capture leaves them alone and the kernel routes them: through
 * WireGuard between nodes). The echo side answers until the call is done; both are bounded by the
 * time-out.
 */
public final class UdpEcho {
    /** The reply (null when none came), the tries it took, the echo's port and the last try's round trip. */
    record Result(String reply, int attempts, int port, double millis) {}

    private static final int TRY_MILLIS = 2000;

    private UdpEcho() {}

    /**
     * Sends every datagram {@code s} receives back to its sender until {@code stop} says so (checked
     * at least every 200 ms).
     */
    public static void echoUntil(DatagramSocket s, BooleanSupplier stop) throws IOException {
        s.setSoTimeout(200);
        byte[] buf = new byte[2048];
        while (!stop.getAsBoolean()) {
            DatagramPacket p = new DatagramPacket(buf, buf.length);
            try {
                s.receive(p);
            } catch (SocketTimeoutException e) {
                continue;
            }
            s.send(new DatagramPacket(p.getData(), p.getLength(), p.getSocketAddress()));
        }
    }

    static Result call(String serverNs, String clientNs, InetAddress server, String payload, Duration timeout)
            throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        CompletableFuture<Integer> port = new CompletableFuture<>();
        CompletableFuture<Void> done = new CompletableFuture<>();
        CompletableFuture<Void> echo = NetworkNamespace.start(NetworkNamespace.named(serverNs), () -> {
            try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(0))) {
                port.complete(s.getLocalPort());
                echoUntil(s, () -> done.isDone() || System.nanoTime() > deadline);
            }
            return null;
        });
        try {
            int at = port.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return NetworkNamespace.call(NetworkNamespace.named(clientNs), () -> {
                try (DatagramSocket s = new DatagramSocket()) {
                    s.setSoTimeout(TRY_MILLIS);
                    byte[] out = payload.getBytes(StandardCharsets.UTF_8);
                    int attempts = 0;
                    while (System.nanoTime() < deadline) {
                        attempts++;
                        long t0 = System.nanoTime();
                        s.send(new DatagramPacket(out, out.length, new InetSocketAddress(server, at)));
                        DatagramPacket in = new DatagramPacket(new byte[2048], 2048);
                        try {
                            s.receive(in);
                        } catch (SocketTimeoutException e) {
                            // the first packet installs the peers and starts the handshake: try again
                            continue;
                        }
                        return new Result(new String(in.getData(), 0, in.getLength(), StandardCharsets.UTF_8),
                                attempts, at, (System.nanoTime() - t0) / 1e6);
                    }
                    return new Result(null, attempts, at, 0);
                }
            }, timeout.plusSeconds(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IOException("the UDP echo in " + serverNs + " did not start: " + e, e);
        } finally {
            done.complete(null);
            echo.handle((v, e) -> null).join();
        }
    }
}
