package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.TwoAgents;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.testing.LogCapture;
import dev.wisp.testing.RoundTrip;
import dev.wisp.testing.Socks5Client;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.Socket;
import java.time.Duration;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * Draining an agent whose peer dials it over HTTP/3 (two agents on loopback, n1 on {@code h3}):
 * the tunnel open at the drain keeps carrying bytes both ways to its end, the client's pool gets
 * the GOAWAY and takes that QUIC connection out (a new tunnel dials a new connection, which the
 * draining agent turns away), and the drain ends when the stream ends — not at its 60 s timeout.
 */
class Http3DrainTest {
    @AutoClose
    final LogCapture access = new LogCapture("wisp.access");
    @AutoClose
    final TwoAgents mesh = TwoAgents.started(Duration.ofSeconds(60), HboneClient.Mode.H3);

    static double value(MeterRegistry registry, String name) {
        var m = registry.find(name);
        return m.counter() != null ? m.counter().count() : m.gauge().value();
    }

    @Test
    void openStreamsFinishAndNewOnesDoNotUseTheDrainedConnection() throws Exception {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(r.reply()).isZero();
        Socket open = r.socket();
        open.getOutputStream().write(42);
        assertThat(open.getInputStream().read()).as("tunnel up over h3").isEqualTo(42);
        MeterRegistry n1 = mesh.n1.telemetry().registry();
        assertThat(value(n1, "wisp_hbone_quic_pool_connections_opened")).isEqualTo(1);

        Thread drain = Thread.ofVirtual().start(mesh.n2::drain);
        await().atMost(Duration.ofSeconds(20))
                .until(() -> value(n1, "wisp_hbone_quic_pool_goaway_received") == 1);
        assertThat(drain.isAlive()).as("still draining: a stream is open").isTrue();

        // A new tunnel does not go on the connection that went away: the pool dials again, and the
        // draining agent turns the new QUIC connection away.
        long seen = mesh.n1.telemetry().flows().last();
        Socks5Client.Result late = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(late.reply()).as("SOCKS5 reply for a tunnel to the draining agent").isNotZero();
        // Turned away after its handshake, not left to the client's handshake timeout.
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.n1.telemetry().flows()
                .since(seen)).singleElement().satisfies(f -> {
                    assertThat(f.verdict()).isEqualTo(FlowRecord.FAILED);
                    assertThat(f.reason()).doesNotContain("no QUIC handshake");
                }));
        assertThat(value(n1, "wisp_hbone_quic_pool_connections_opened")).isEqualTo(2);

        // The open stream carries 4 MiB each way after the GOAWAY, then ends with a FIN each way.
        RoundTrip trip = RoundTrip.echo(open, 4L << 20, 120);
        assertThat(trip.bytesReceived()).isEqualTo(4L << 20);
        assertThat(trip.received()).as("SHA-256 back").isEqualTo(trip.sent());
        assertThat(drain.join(Duration.ofSeconds(30))).as("drain ended with its last stream, not at 60 s")
                .isTrue();
        assertThat(value(mesh.n2.telemetry().registry(), "wisp_hbone_quic_server_connections")).isZero();
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines())
                .anyMatch(l -> l.contains("connection complete direction=inbound") && l.contains("protocol=h3")
                        && l.contains("bytes_recv=" + ((4L << 20) + 1)) && !l.contains("error=")));
    }
}
