package dev.wisp.node.proxy;

import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.Fixtures;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.testing.EchoServer;
import dev.wisp.testing.RawHboneClient;
import dev.wisp.testing.Socks5Client;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.socksx.v5.Socks5CommandStatus;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.net.InetSocketAddress;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The HBONE server refuses new streams on a connection whose client certificate no longer holds
 * ({@link StaleCredentials}): a client keeps one HTTP/2 connection open past its certificate's
 * expiry, or across the retirement of the root that issued it, and opens a stream on it. The stream
 * is answered 421 with a refused flow record saying why and the counter, the connection gets GOAWAY,
 * the stream opened before goes on, and a new connection with a renewed certificate succeeds.
 *
 * <p>The agent's own client (node n1: SOCKS5, {@link Outbound}, {@link HbonePool}) holding a pooled
 * connection across a root's retirement gets one 421 on it, and its CONNECT is retried on a new
 * connection, made with its renewed certificate: the application sees no failure.
 *
 * <p>The server is node n2's real {@link HboneServer} with pod-b (an echo server) at 127.0.0.3, its
 * credentials and the client's from one in-memory CA whose roots the test rotates.
 */
class StaleCertificateTest {
    static final SpiffeId CLIENT = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/client");
    CertificateAuthority ca;
    Identities serverIds;
    Transport transport;
    Telemetry telemetry;
    EchoServer echo;
    HboneServer server;
    InetSocketAddress hbone;
    RawHboneClient raw;

    QuicHboneServer quicServer;

    @BeforeEach
    void start() throws Exception {
        serve(CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()));
    }

    /** Node n2's HBONE servers, HTTP/2 and HTTP/3 on one port number, with credentials from a CA of {@code settings}. */
    void serve(CaSettings settings) throws Exception {
        ca = CertificateAuthority.inMemory(settings);
        serverIds = Identities.local(ca, "n2");
        transport = Transport.create(1);
        telemetry = new Telemetry();
        echo = new EchoServer(new InetSocketAddress("127.0.0.3", 0));
        ProxyContext ctx = new ProxyContext("n2", Fixtures.index(List.of(node("n2", "127.0.0.2", 15008)),
                List.of(res(workload("pod-b", "server", "n2", "127.0.0.3"))), List.of()), new HboneTls(serverIds),
                telemetry, transport, Set.of(), 15008, Duration.ofSeconds(5));
        server = new HboneServer(ctx, Duration.ofSeconds(30));
        hbone = server.bind(new InetSocketAddress("127.0.0.2", 0));
        quicServer = new QuicHboneServer(ctx, Duration.ofSeconds(30));
        quicServer.bind(hbone);
        raw = new RawHboneClient();
    }

    @AfterEach
    void stop() throws Exception {
        raw.close();
        quicServer.close();
        server.close();
        echo.close();
        transport.close();
        serverIds.close();
    }

    @Test
    void aStreamAfterTheClientCertificateExpiredIsRefusedAndTheConnectionGoesAway() throws Exception {
        X509Svid shortLived = ca.issue(CLIENT, Duration.ofSeconds(8), "n1");
        try (RawHboneClient.Connection conn = raw.connection(presenting(shortLived), hbone)) {
            RawHboneClient.Stream before = tunnelUp(conn);

            await().atMost(Duration.ofSeconds(30)).until(() -> Instant.now().isAfter(shortLived.notAfter()));
            RawHboneClient.Stream after = conn.open(connect());
            assertThat(after.status.get(10, TimeUnit.SECONDS)).as("a stream after the expiry").isEqualTo("421");
            assertThat(conn.goAway.get(10, TimeUnit.SECONDS)).as("GOAWAY's last stream: the refused one")
                    .isEqualTo(after.id());
            assertThat(refusal().reason()).isEqualTo("the peer's certificate " + CLIENT + " expired at "
                    + shortLived.notAfter());
            stillEchoes(before);
        }
        assertThat(staleStreams()).isEqualTo(1.0);
        renewedClientSucceeds();
    }

    @Test
    void aStreamAfterTheClientCertificateRootWasRetiredIsRefusedAndTheConnectionGoesAway() throws Exception {
        X509Svid oldRootCertificate = ca.issue(CLIENT, Duration.ofHours(1), "n1");
        try (RawHboneClient.Connection conn = raw.connection(presenting(oldRootCertificate), hbone)) {
            RawHboneClient.Stream before = tunnelUp(conn);

            X509Certificate oldRoot = ca.signingCertificate();
            ca.switchSigning(ca.addRoot());
            RawHboneClient.Stream bothRoots = conn.open(connect());
            assertThat(bothRoots.status.get(10, TimeUnit.SECONDS)).as("while the old root is trusted").isEqualTo("200");
            ca.retireRoot(oldRoot);

            RawHboneClient.Stream after = conn.open(connect());
            assertThat(after.status.get(10, TimeUnit.SECONDS)).as("a stream after the retire").isEqualTo("421");
            assertThat(conn.goAway.get(10, TimeUnit.SECONDS)).as("GOAWAY's last stream: the refused one")
                    .isEqualTo(after.id());
            FlowRecord refused = refusal();
            assertThat(refused.reason()).contains("does not chain to the trust bundle");
            assertThat(refused.sourceIdentity()).isEqualTo(CLIENT.toString());
            stillEchoes(before);
        }
        assertThat(staleStreams()).isEqualTo(1.0);
        renewedClientSucceeds();
    }

    @ParameterizedTest
    @EnumSource(value = HboneClient.Mode.class, names = {"H2", "H3"})
    void theAgentsOwnPooledConnectionAcrossARootRetireIsRefusedOnceAndTheStreamRetriedOnANewConnection(
            HboneClient.Mode mode) throws Exception {
        try (Identities clientIds = Identities.local(ca, "n1"); Agent n1 = new Agent(clientIds, mode)) {
            Socks5Client.Result first = n1.connect();
            roundTrip(first.socket(), "before");

            // add, switch, both agents renewed (as the rotation's steps do), retire: the pooled
            // connection was made with pod-a's certificate of the old root.
            X509Certificate oldRoot = ca.signingCertificate();
            ca.switchSigning(ca.addRoot());
            clientIds.certificates().release(CLIENT);
            serverIds.certificates().release(IdentityProvider.nodeId("cluster.local", "n2"));
            ca.retireRoot(oldRoot);

            Socks5Client.Result second = n1.connect();
            assertThat(second.reply()).as("SOCKS5 reply after the retire")
                    .isEqualTo(Socks5CommandStatus.SUCCESS.byteValue());
            roundTrip(second.socket(), "after");
            assertThat(staleStreams()).as("streams the server refused").isEqualTo(1.0);
            assertThat(n1.connectionsOpened()).as("HBONE connections the agent opened").isEqualTo(2);
            roundTrip(first.socket(), "still open");
            first.socket().close();
            second.socket().close();
        }
    }

    @Test
    void theQuicPoolTakesNoNewStreamsOnAConnectionOnceACertificateItWasVerifiedWithExpired() throws Exception {
        stop();
        serve(CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()).withMaxTtl(Duration.ofSeconds(10)));
        try (Identities clientIds = Identities.local(ca, "n1"); Agent n1 = new Agent(clientIds, HboneClient.Mode.H3)) {
            Socks5Client.Result first = n1.connect();
            roundTrip(first.socket(), "before");
            await().atMost(Duration.ofSeconds(60))
                    .until(() -> n1.count("wisp_hbone_quic_pool_certificate_expiries") == 1);

            Socks5Client.Result second = n1.connect();
            assertThat(second.reply()).as("SOCKS5 reply after the expiry")
                    .isEqualTo(Socks5CommandStatus.SUCCESS.byteValue());
            roundTrip(second.socket(), "after");
            assertThat(n1.connectionsOpened()).as("QUIC connections the agent opened").isEqualTo(2);
            assertThat(staleStreams()).as("streams the server had to refuse").isZero();
            roundTrip(first.socket(), "still open");
            first.socket().close();
            second.socket().close();
        }
    }

    /** Node n1's agent: SOCKS5 for pod-a, whose connections go to pod-b through this test's server over {@code mode}. */
    private final class Agent implements AutoCloseable {
        final Telemetry telemetry = new Telemetry();
        final HboneClient.Mode mode;
        final HbonePool pool;
        final HboneClient client;
        final Outbound outbound;
        final Socks5 socks;
        final InetSocketAddress socksAddress;

        Agent(Identities ids, HboneClient.Mode mode) throws Exception {
            this.mode = mode;
            ProxyContext ctx = new ProxyContext("n1", Fixtures.index(List.of(node("n2", "127.0.0.2", hbone.getPort())),
                    List.of(res(workload("pod-a", "client", "n1", "127.0.0.4")),
                            res(workload("pod-b", "server", "n2", "127.0.0.3"))),
                    List.of()),
                    new HboneTls(ids), telemetry, transport, Set.of(), 15008, Duration.ofSeconds(5));
            pool = new HbonePool(ctx, 100, Duration.ofMinutes(5));
            client = new HboneClient(ctx, Optional.of(mode), pool, 100, Duration.ofMinutes(5));
            outbound = new Outbound(ctx, client, OriginalDestinationResolver.fixed(echo.address()));
            socks = new Socks5(ctx, outbound, Optional.of("pod-a"));
            socksAddress = socks.bind(new InetSocketAddress("127.0.0.1", 0));
        }

        double count(String counter) {
            return telemetry.registry().get(counter).counter().count();
        }

        /** HBONE connections opened over the agent's framing. */
        double connectionsOpened() {
            return telemetry.registry().get(mode == HboneClient.Mode.H3
                    ? "wisp_hbone_quic_pool_connections_opened"
                    : "wisp_hbone_pool_connections_opened").gauge().value();
        }

        Socks5Client.Result connect() throws Exception {
            return Socks5Client.connect(socksAddress, echo.address());
        }

        @Override
        public void close() {
            socks.close();
            outbound.close();
            client.close();
            pool.close();
        }
    }

    /** Sends {@code text} through a tunnel and reads the echo back. */
    private static void roundTrip(Socket s, String text) throws Exception {
        s.setSoTimeout(10_000);
        s.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
        assertThat(new String(s.getInputStream().readNBytes(text.length()), StandardCharsets.UTF_8)).isEqualTo(text);
    }

    private static io.netty.handler.ssl.SslContext presenting(X509Svid svid) throws Exception {
        return RawHboneClient.presenting(svid.leaf(), svid.privateKey());
    }

    private Http2Headers connect() {
        return new DefaultHttp2Headers().method("CONNECT").authority(Hbone.authority(echo.address()));
    }

    /** Opens a tunnel to pod-b on {@code conn} and shows bytes go through it. */
    private RawHboneClient.Stream tunnelUp(RawHboneClient.Connection conn) throws Exception {
        RawHboneClient.Stream s = conn.open(connect());
        assertThat(s.status.get(10, TimeUnit.SECONDS)).as("the first stream").isEqualTo("200");
        s.send("first ");
        await().atMost(Duration.ofSeconds(10)).until(() -> s.received().equals("first "));
        return s;
    }

    /** A tunnel opened before the refusal is not cut by it. */
    private static void stillEchoes(RawHboneClient.Stream s) {
        s.send("still open");
        await().atMost(Duration.ofSeconds(10)).until(() -> s.received().equals("first still open"));
    }

    /** The one refused flow of the server: the stale certificate's, with the 421 and why. */
    private FlowRecord refusal() {
        List<FlowRecord> refused = telemetry.flows().since(0).stream()
                .filter(f -> f.verdict().equals(FlowRecord.FAILED)).toList();
        assertThat(refused).hasSize(1);
        return refused.getFirst();
    }

    private double staleStreams() {
        var c = telemetry.registry().find(StaleCredentials.COUNTER).counter();
        return c == null ? 0 : c.count(); // registered at the first refusal
    }

    /** An honest client, renewed, connects again and its tunnel works. */
    private void renewedClientSucceeds() throws Exception {
        try (RawHboneClient.Connection conn = raw.connection(presenting(ca.issue(CLIENT, Duration.ofHours(1), "n1")),
                hbone)) {
            tunnelUp(conn);
        }
    }
}
