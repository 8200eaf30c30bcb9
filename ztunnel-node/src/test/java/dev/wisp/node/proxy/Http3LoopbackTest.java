package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.workload.v1.Action;
import dev.wisp.node.Fixtures;
import dev.wisp.node.TwoAgents;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import dev.wisp.testing.LogCapture;
import dev.wisp.testing.RoundTrip;
import dev.wisp.testing.Socks5Client;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.Random;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * HBONE over HTTP/3 between two real agents on loopback (one JVM), n1 dialling with
 * {@code --hbone h3}: SOCKS5 → outbound → QUIC pool → TLS 1.3 in QUIC, HTTP/3 CONNECT → the QUIC
 * HBONE server → the same authorization as HTTP/2 → echo workload, and back; a DENY policy and a
 * client of another CA refused. The two-namespace proofs (a capture of the link, UDP blocked and
 * the fall back to HTTP/2) are the e2e module's {@code Http3MeshE2eTest}.
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
        // The client's agent too, in its metrics (every outbound flow of n1 went over h3) and both flow logs.
        assertThat(counter(mesh.n1.telemetry().registry(), "istio_tcp_connections_opened", "source", "h3"))
                .isGreaterThanOrEqualTo(1);
        assertThat(counter(mesh.n1.telemetry().registry(), "istio_tcp_connections_opened", "source", "tcp"))
                .isZero();
        for (var agent : List.of(mesh.n1, mesh.n2)) {
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(agent.telemetry().flows().since(0))
                    .filteredOn(f -> f.bytesSent() == 16L << 20).singleElement()
                    .satisfies(f -> assertThat(f.protocol()).isEqualTo("h3")));
        }
        // Nothing went over HTTP/2: the client's TLS pool never opened a connection.
        assertThat(mesh.n1.telemetry().registry().get("wisp_hbone_pool_connections_opened").gauge().value())
                .isZero();
        assertThat(mesh.n1.telemetry().registry().get("wisp_hbone_quic_pool_connections_opened").gauge().value())
                .isGreaterThanOrEqualTo(1);
    }

    @Test
    void aDenyPolicyRefusesTheStreamAsOverHttp2() throws Exception {
        String client = TwoAgents.CLIENT_ID.substring("spiffe://".length());
        try {
            mesh.apply(StateUpdates.AUTHORIZATION, List.of(Fixtures.principalPolicy("deny-h3", Action.DENY, client)),
                    List.of());
            // 401 from the server agent → SOCKS5 "not allowed by ruleset", as FlowsEndpointTest sees over HTTP/2.
            assertThat(Socks5Client.connect(mesh.socks(), mesh.echo.address()).reply()).isEqualTo(2);
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines())
                    .anyMatch(l -> l.contains("direction=inbound") && l.contains("protocol=h3")
                            && l.contains("deny-h3") && l.contains("src.identity=\"" + TwoAgents.CLIENT_ID + "\"")));
            assertThat(
                    mesh.n2.telemetry().registry().find("istio_tcp_connections_closed").tag("reporter", "destination")
                            .tag("request_protocol", "h3").tag("response_flags", "DENY").counter())
                    .isNotNull();
            // The client's agent records the refusal as carried over h3: the 401 came back on it.
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.n1.telemetry().flows()
                    .since(0)).anyMatch(f -> f.verdict().equals(FlowRecord.DENIED) && f.protocol().equals("h3")));
        } finally {
            mesh.apply(StateUpdates.AUTHORIZATION, List.of(), List.of("default/deny-h3"));
        }
    }

    @Test
    void aClientOfAnotherCaIsRefusedInTheQuicHandshake() throws Exception {
        CertificateAuthority other = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
                NodeAuthorizer.unrestricted()));
        // It trusts the mesh's roots, so only the server can refuse it.
        try (Identities foreign = Identities.create("cluster.local", Identities.localSigner(other, "n1"),
                mesh.ca::bundle); Transport t = Transport.create(1)) {
            QuicHbonePool pool = new QuicHbonePool(QuicClients.context(foreign, t), 10, () -> Duration.ofSeconds(10),
                    Duration
                            .ofMinutes(5));
            Future<QuicStreamChannel> f = QuicClients.openToN2(mesh, pool);
            assertThat(f.await(20, TimeUnit.SECONDS)).isTrue();
            // In TLS 1.3 the client's handshake ends before the server has checked its certificate:
            // the refusal reaches the client as the connection closing under the stream it opened.
            if (f.isSuccess()) {
                assertThat(f.getNow().closeFuture().await(20, TimeUnit.SECONDS)).as("stream closed by the refusal")
                        .isTrue();
            } else {
                assertThat(f.cause()).isInstanceOf(HboneException.class);
            }
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines())
                    .anyMatch(l -> l.contains("direction=inbound") && l.contains("protocol=h3")
                            && l.contains("error=\"TLS handshake failed") && l.contains("CERTIFICATE_VERIFY_FAILED")));
            pool.close();
        }
    }

    @Test
    void keepalivesHoldAQuietConnectionOpenPastQuicsIdleTimeoutAndItsAbsenceClosesIt() throws Exception {
        try (Identities mine = Identities.create("cluster.local", Identities.localSigner(mesh.ca, "n1"),
                mesh.ca::bundle); Transport t = Transport.create(1)) {
            // QUIC idle timeout 1.5 s (the smaller of both ends applies), keepalive every 0.3 s.
            QuicHbonePool kept = new QuicHbonePool(QuicClients.context(mine, t), 10, () -> Duration.ofSeconds(10),
                    Duration.ofMinutes(5), Duration.ofMillis(1500), Duration.ofMillis(300));
            QuicStreamChannel quiet = QuicClients.openToN2(mesh, kept).get(20, TimeUnit.SECONDS);
            await().during(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(8)).until(quiet::isActive);
            assertThat(kept.connections()).isEqualTo(1);
            kept.close();
            // The same without keepalives: QUIC's idle timeout closes the connection and the stream with it.
            QuicHbonePool silent = new QuicHbonePool(QuicClients.context(mine, t), 10, () -> Duration.ofSeconds(10),
                    Duration.ofMinutes(5), Duration.ofMillis(1500), Duration.ofHours(1));
            QuicStreamChannel cut = QuicClients.openToN2(mesh, silent).get(20, TimeUnit.SECONDS);
            await().atMost(Duration.ofSeconds(15)).until(() -> !cut.isActive());
            await().atMost(Duration.ofSeconds(5)).until(() -> silent.connections() == 0);
            silent.close();
        }
    }

    @Test
    void aHandshakeTimeoutIsOneLogLineWithoutAStackTraceAndCounted() throws Exception {
        try (LogCapture all = new LogCapture(org.slf4j.Logger.ROOT_LOGGER_NAME);
                DatagramSocket silent = new DatagramSocket(0, InetAddress.getLoopbackAddress());
                Identities mine = Identities.create("cluster.local", Identities.localSigner(mesh.ca, "n1"),
                        mesh.ca::bundle);
                Transport t = Transport.create(1)) {
            ProxyContext ctx = QuicClients.context(mine, t);
            QuicHbonePool pool = new QuicHbonePool(ctx, 10, () -> Duration.ofMillis(300), Duration.ofMinutes(5));
            PoolKey key = new PoolKey(SpiffeId.parse(TwoAgents.CLIENT_ID), List.of(IdentityProvider.nodeId(
                    "cluster.local", "n2")), (java.net.InetSocketAddress) silent.getLocalSocketAddress());
            Future<QuicStreamChannel> f = pool.open(key, new ChannelInboundHandlerAdapter(),
                    ImmediateEventExecutor.INSTANCE.newPromise());
            assertThat(f.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(f.cause()).isInstanceOf(HboneException.class).hasMessageContaining(
                    "no QUIC handshake within 300 ms");
            // The closed socket's aftermath (the QUIC channel failing its connect) runs after the failure.
            await().during(Duration.ofSeconds(1)).atMost(Duration.ofSeconds(3)).until(() -> all.withThrowables()
                    .isEmpty());
            assertThat(all.lines()).filteredOn(l -> l.contains("no QUIC handshake within")).singleElement()
                    .asString().contains("1 handshake timeout(s) so far");
            assertThat(ctx.telemetry().registry().get("wisp_hbone_quic_pool_handshake_timeouts").gauge().value())
                    .isEqualTo(1);
            pool.close();
        }
    }

    @Test
    void initialsWithoutATokenGetARetryAndNoConnection() throws Exception {
        double before = mesh.n2.telemetry().registry().get("wisp_hbone_quic_server_connections").gauge().value();
        Random random = new Random(12);
        try (DatagramSocket spoofer = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            spoofer.setSoTimeout(5000);
            for (int i = 0; i < 50; i++) {
                byte[] initial = new byte[1200];
                random.nextBytes(initial);
                ByteBuffer b = ByteBuffer.wrap(initial);
                // Long header, Initial, version 1, 8-byte connection IDs, no token, then the length
                // of the (never decrypted) rest: a client's first packet as any address could send it.
                b.put((byte) 0xC3).putInt(1).put((byte) 8).position(14).put((byte) 8).position(23).put((byte) 0)
                        .putShort((short) (0x4000 | (1200 - 26)));
                spoofer.send(new DatagramPacket(initial, initial.length, mesh.n2.addresses().get("hbone_quic")));
                DatagramPacket answer = new DatagramPacket(new byte[1500], 1500);
                spoofer.receive(answer);
                assertThat(answer.getData()[0] & 0xF0).as("answer %d is a Retry (RFC 9000 §17.2.5)", i)
                        .isEqualTo(0xF0);
            }
        }
        assertThat(mesh.n2.telemetry().registry().get("wisp_hbone_quic_server_connections").gauge().value())
                .as("no connection made for a token-less Initial").isEqualTo(before);
        // A real client follows the Retry: its tunnel still works (the other tests) and this one too.
        RoundTrip trip = RoundTrip.echo(tunnel(), 4096, 60);
        assertThat(trip.received()).isEqualTo(trip.sent());
    }

    @Test
    void manyConcurrentHalfClosedStreamsShareOneQuicConnection() throws Exception {
        List<Socket> open = new ArrayList<>();
        try {
            for (int i = 0; i < 50; i++) {
                open.add(tunnel());
            }
            for (Socket s : open) {
                s.getOutputStream().write(7);
                s.shutdownOutput(); // a FIN is a half-close: the echo still comes back, then EOF
            }
            for (Socket s : open) {
                assertThat(s.getInputStream().readAllBytes()).containsExactly(7);
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
