package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.TwoAgents;
import dev.wisp.testing.LogCapture;
import dev.wisp.testing.RoundTrip;
import dev.wisp.testing.Socks5Client;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * HBONE over HTTP/3 between two real agents on loopback (one JVM), n1 dialling with
 * {@code --hbone h3}: SOCKS5 → outbound → QUIC pool → TLS 1.3 in QUIC, HTTP/3 CONNECT → the QUIC
 * HBONE server → the same authorization as HTTP/2 → echo workload, and back. The two-namespace
 * proofs (capture on the link, UDP blocked, DENY, a foreign CA) are the e2e module's
 * {@code Http3MeshE2eTest}.
 */
class Http3LoopbackTest {
    @AutoClose
    static final LogCapture access = new LogCapture("wisp.access");
    @AutoClose
    static final TwoAgents mesh = TwoAgents.started(Duration.ofSeconds(5), HboneClient.Mode.H3);

    static Socket tunnel() throws IOException {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        return r.socket();
    }

    static double counter(MeterRegistry registry, String name, String reporter, String protocol) {
        return registry.find(name).tag("reporter", reporter).tag("request_protocol", protocol).counters().stream()
                .mapToDouble(Counter::count).sum();
    }

    @Test
    void echoesOverHttp3WithBothIdentitiesChecked() throws Exception {
        RoundTrip trip = RoundTrip.echo(tunnel(), 16L << 20, 120);
        assertThat(trip.bytesReceived()).isEqualTo(16L << 20);
        assertThat(trip.received()).as("SHA-256 back").isEqualTo(trip.sent());
        // The server agent saw the client's SVID (verified in QUIC's TLS) and reports the flow as h3.
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines())
                .anyMatch(l -> l.contains("connection complete direction=inbound")
                        && l.contains("src.identity=\"" + TwoAgents.CLIENT_ID + "\"") && l.contains("protocol=h3")
                        && l.contains("bytes_recv=" + (16L << 20)))
                .anyMatch(l -> l.contains("connection complete direction=outbound") && l.contains("protocol=h3")));
        assertThat(counter(mesh.n2.telemetry().registry(), "istio_tcp_connections_opened", "destination", "h3"))
                .isGreaterThanOrEqualTo(1);
        // Nothing went over HTTP/2: the client's TLS pool never opened a connection.
        assertThat(mesh.n1.telemetry().registry().get("wisp_hbone_pool_connections_opened").gauge().value())
                .isZero();
        assertThat(mesh.n1.telemetry().registry().get("wisp_hbone_quic_pool_connections_opened").gauge().value())
                .isGreaterThanOrEqualTo(1);
    }

    @Test
    void halfCloseKeepsTheOtherDirectionOpen() throws Exception {
        try (Socket s = tunnel()) {
            s.getOutputStream().write("hello over quic".getBytes());
            s.shutdownOutput();
            assertThat(new String(s.getInputStream().readAllBytes())).isEqualTo("hello over quic");
        }
    }

    @Test
    void manyConcurrentStreamsShareOneQuicConnection() throws Exception {
        List<Socket> open = new ArrayList<>();
        try {
            for (int i = 0; i < 50; i++) {
                open.add(tunnel());
            }
            for (Socket s : open) {
                s.getOutputStream().write(7);
            }
            for (Socket s : open) {
                assertThat(s.getInputStream().read()).isEqualTo(7);
            }
            assertThat(mesh.n1.telemetry().registry().get("wisp_hbone_quic_pool_connections").gauge().value())
                    .isEqualTo(1);
        } finally {
            for (Socket s : open) {
                s.close();
            }
        }
    }
}
