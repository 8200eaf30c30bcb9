package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.testing.Socks5Client;
import dev.wisp.node.TwoAgents;
import java.io.DataInputStream;
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
            Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
            assertThat(r.reply()).isZero();
            try (Socket s = r.socket()) {
                DataInputStream in = new DataInputStream(s.getInputStream());
                s.getOutputStream().write(new byte[1000]);
                in.readFully(new byte[1000]);
                CompletableFuture<Void> drained = CompletableFuture.runAsync(mesh.n2::drain);
                // Draining answers readiness with 503 (not a refused connection, which would read as -1).
                await().atMost(Duration.ofSeconds(10)).until(() -> ready(mesh) == 503 && mesh.n1.telemetry()
                        .registry().get("wisp_hbone_pool_goaway_received").counter().count() >= 1);
                // New tunnels are refused: the listener is closed, and the old connection takes no new streams.
                assertThat(Socks5Client.connect(mesh.socks(), mesh.echo.address()).reply()).isNotZero();
                assertThat(drained).isNotDone();
                // The open stream keeps working and finishes normally.
                s.getOutputStream().write(new byte[5000]);
                in.readFully(new byte[5000]);
                s.shutdownOutput();
                assertThat(in.read()).isEqualTo(-1);
                drained.get(15, java.util.concurrent.TimeUnit.SECONDS);
            }
        }
    }
}
