package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.TwoAgents;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.spiffe.manager.CertificateSigner;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * An agent whose certificate cannot be signed when it starts (its control plane slow or out of
 * reach) still binds HBONE over HTTP/3, refuses QUIC handshakes while it has no SVID, and serves
 * HTTP/3 as soon as its signer signs: the QUIC server asks for its SVID at each handshake, not at bind.
 */
class QuicBeforeCertificateTest {
    private static final SpiffeId N2 = IdentityProvider.nodeId("cluster.local", "n2");

    @Test
    void aServerBoundBeforeItsCertificateServesHttp3OnceTheSignerSigns() throws Exception {
        CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
                NodeAuthorizer.unrestricted()));
        CertificateSigner signs = Identities.localSigner(ca, "n2");
        AtomicBoolean refusing = new AtomicBoolean(true);
        AtomicInteger refused = new AtomicInteger();
        CertificateSigner unreachableAtFirst = (id, csr, ttl) -> {
            if (refusing.get()) {
                refused.incrementAndGet();
                return CompletableFuture.failedFuture(new IllegalStateException(
                        "UNAVAILABLE: Connection closed while performing TLS negotiation"));
            }
            return signs.sign(id, csr, ttl);
        };
        try (Identities n2Ids = Identities.create("cluster.local", unreachableAtFirst, ca::bundle);
                Identities n1Ids = Identities.create("cluster.local", Identities.localSigner(ca, "n1"), ca::bundle);
                Transport t2 = Transport.create(1);
                Transport t1 = Transport.create(1)) {
            ProxyContext n2 = new ProxyContext("n2", WorkloadIndex.create(), new HboneTls(n2Ids), new Telemetry(), t2,
                    Set.of(), 15008, Duration.ofSeconds(5));
            QuicHboneServer server = new QuicHboneServer(n2, Duration.ofSeconds(5));
            List<QuicHbonePool> pools = new ArrayList<>();
            try {
                // Bound although the signer refuses (it used to ask for the SVID here and throw).
                InetSocketAddress at = server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                assertThat(at.getPort()).isPositive();
                ProxyContext n1 = QuicClients.context(n1Ids, t1);

                // While n2 has no certificate its handshakes fail: no stream opens.
                Future<QuicStreamChannel> before = open(n1, at, pools);
                assertThat(before.await(60, TimeUnit.SECONDS)).as("the first attempt ended").isTrue();
                assertThat(before.isSuccess()).as("a stream before n2 has a certificate").isFalse();
                assertThat(refused.get()).as("signing attempts refused").isPositive();

                // The control plane answers: the next handshake gets the certificate and HTTP/3 is served.
                refusing.set(false);
                await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
                    Future<QuicStreamChannel> f = open(n1, at, pools);
                    assertThat(f.await(40, TimeUnit.SECONDS)).as("the attempt ended").isTrue();
                    assertThat(f.cause()).as("why no QUIC stream to n2 opened once it can be signed").isNull();
                    f.getNow().close();
                });
                assertThat(n2Ids.certificates().current(N2)).as("n2's certificate, fetched by a handshake")
                        .isPresent();
            } finally {
                pools.forEach(QuicHbonePool::close);
                server.close();
            }
        }
    }

    /** A request stream from the client to n2's QUIC server at {@code at}, on a new pool (no CONNECT sent). */
    private static Future<QuicStreamChannel> open(ProxyContext client, InetSocketAddress at,
            List<QuicHbonePool> pools) {
        QuicHbonePool pool = new QuicHbonePool(client, 10, () -> Duration.ofSeconds(30), Duration.ofMinutes(5));
        pools.add(pool);
        return pool.open(new PoolKey(SpiffeId.parse(TwoAgents.CLIENT_ID), List.of(N2), at),
                new ChannelInboundHandlerAdapter(), ImmediateEventExecutor.INSTANCE.newPromise());
    }
}
