package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.testing.Socks5Client;
import dev.wisp.node.TwoAgents;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.Socket;
import java.net.URI;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** Drain: stop accepting, GOAWAY, open streams finish, readiness goes 503. */
class DrainTest {
    static int ready(TwoAgents mesh) throws Exception {
        HttpURLConnection c = (HttpURLConnection) URI.create("http://"
                + Hbone.authority(mesh.n2.addresses().get("readiness")) + "/healthz/ready").toURL().openConnection();
        try {
            return c.getResponseCode();
        } catch (java.io.IOException e) {
            return -1;
        } finally {
            c.disconnect();
        }
    }

    @Test
    void openStreamsFinishAfterGoAwayWhileNewConnectionsAreRefused() throws Exception {
        try (TwoAgents mesh = new TwoAgents(Duration.ofSeconds(20))) {
            assertThat(ready(mesh)).isEqualTo(200);
            try (Socket s = echoedTunnel(mesh, 1000)) {
                CompletableFuture<Void> drained = CompletableFuture.runAsync(mesh.n2::drain);
                // Draining answers readiness with 503 (not a refused connection, which would read as -1).
                await().atMost(Duration.ofSeconds(10)).until(() -> ready(mesh) == 503 && mesh.n1.telemetry()
                        .registry().get("wisp_hbone_pool_goaway_received").counter().count() >= 1);
                // New tunnels are refused: the listener is closed, and the old connection takes no new streams.
                assertThat(Socks5Client.connect(mesh.socks(), mesh.echo.address()).reply()).isNotZero();
                // The open stream keeps working and finishes normally.
                endAfterMore(s, drained);
            }
        }
    }

    /**
     * The client side: n1's drain waits for its open outbound connection (carried over its pooled
     * HBONE connection, which stays until then), and counts nothing at the deadline.
     */
    @Test
    void aClientAgentsDrainWaitsForItsOutboundConnections() throws Exception {
        try (TwoAgents mesh = new TwoAgents(Duration.ofSeconds(20))) {
            try (Socket s = echoedTunnel(mesh, 1000)) {
                CompletableFuture<Void> drained = CompletableFuture.runAsync(mesh.n1::drain);
                // n1 no longer accepts (its SOCKS5 listener is closed) ...
                await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThatThrownBy(() -> Socks5Client
                        .connect(mesh.socks(), mesh.echo.address())).isInstanceOf(java.net.ConnectException.class));
                // ... and its open connection goes on, over its pooled HBONE connection, until the client ends it.
                endAfterMore(s, drained);
            }
            assertThat(closedAtDeadline(mesh)).isZero();
        }
    }

    /** A connection still open at the drain deadline is reset then, and counted. */
    @Test
    void aConnectionOpenAtTheDeadlineIsResetAndCounted() throws Exception {
        try (TwoAgents mesh = new TwoAgents(Duration.ofSeconds(1))) {
            try (Socket s = echoedTunnel(mesh, 100)) {
                long start = System.nanoTime();
                mesh.n1.drain();
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isGreaterThanOrEqualTo(Duration.ofMillis(
                        900));
                assertThat(closedAtDeadline(mesh)).isEqualTo(1.0);
                // Reset, not ended: the client must not take it for a complete exchange.
                assertThatThrownBy(s.getInputStream()::read).isInstanceOf(java.net.SocketException.class)
                        .hasMessageContaining("reset");
            }
        }
    }

    /** A SOCKS5 tunnel through n1 and n2 to the echo server that has carried {@code bytes} each way. */
    private static Socket echoedTunnel(TwoAgents mesh, int bytes) throws IOException {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(r.reply()).isZero();
        Socket s = r.socket();
        echo(s, bytes);
        return s;
    }

    private static void echo(Socket s, int bytes) throws IOException {
        s.getOutputStream().write(new byte[bytes]);
        new DataInputStream(s.getInputStream()).readFully(new byte[bytes]);
    }

    /** While {@code drained} waits for it, {@code s} carries 5000 bytes each way and ends; then the drain ends. */
    private static void endAfterMore(Socket s, CompletableFuture<Void> drained) throws Exception {
        assertThat(drained).isNotDone();
        echo(s, 5000);
        s.shutdownOutput();
        assertThat(s.getInputStream().read()).isEqualTo(-1);
        drained.get(15, java.util.concurrent.TimeUnit.SECONDS);
    }

    private static double closedAtDeadline(TwoAgents mesh) {
        return mesh.n1.telemetry().registry().get("wisp_drain_closed_at_deadline").counter().count();
    }
}
