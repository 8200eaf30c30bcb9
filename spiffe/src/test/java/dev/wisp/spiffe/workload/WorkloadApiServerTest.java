package dev.wisp.spiffe.workload;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.InMemoryNodeAuthorizer;
import dev.wisp.spiffe.manager.CertificateManager;
import dev.wisp.spiffe.testing.ManualScheduler;
import dev.wisp.spiffe.testing.MutableClock;
import dev.wisp.spiffe.workload.grpc.SpiffeWorkloadAPIGrpc;
import dev.wisp.spiffe.workload.grpc.X509BundlesRequest;
import dev.wisp.spiffe.workload.grpc.X509SVIDRequest;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDomainSocketChannel;
import io.spiffe.bundle.x509bundle.X509BundleSet;
import io.spiffe.spiffeid.TrustDomain;
import io.spiffe.workloadapi.DefaultWorkloadApiClient;
import io.spiffe.workloadapi.DefaultX509Source;
import io.spiffe.workloadapi.Watcher;
import io.spiffe.workloadapi.WorkloadApiClient;
import java.math.BigInteger;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Workload API server, with java-spiffe's own client as the peer. */
class WorkloadApiServerTest {
    static final String TD = "cluster.local";
    final SpiffeId cart = SpiffeId.forServiceAccount(TD, "shop", "cart");
    final MutableClock clock = new MutableClock(Instant.now());
    final ManualScheduler scheduler = new ManualScheduler(clock);
    final CertificateAuthority ca = CertificateAuthority.inMemory(
            CaSettings.of(TD, new InMemoryNodeAuthorizer().addPod("node-1", "shop", "cart")).withClock(clock));
    final CertificateManager manager = CertificateManager
            .builder((id, csr, ttl) -> CompletableFuture.completedFuture(ca.sign(csr, ttl, "node-1")), scheduler)
            .clock(clock).ttl(Duration.ofHours(1)).build();
    @TempDir
    Path dir;
    WorkloadApiServer server;

    @BeforeEach
    void start() throws Exception {
        server = WorkloadApiServer.start(dir.resolve("agent.sock"), cart, manager, ca::bundle);
    }

    @AfterEach
    void stop() {
        server.close();
        manager.close();
    }

    String address() {
        return "unix:" + server.socket();
    }

    @Test
    void javaSpiffeX509SourceReceivesTheSvidAndItsRenewal() throws Exception {
        DefaultX509Source source = DefaultX509Source.newSource(DefaultX509Source.X509SourceOptions.builder()
                .spiffeSocketPath(address()).initTimeout(Duration.ofSeconds(30)).build());
        try {
            X509Svid issued = manager.current(cart).orElseThrow();
            io.spiffe.svid.x509svid.X509Svid seen = source.getX509Svid();
            assertThat(seen.getSpiffeId().toString()).isEqualTo(cart.toString());
            assertThat(seen.getLeaf()).isEqualTo(issued.leaf());
            assertThat(seen.getPrivateKey().getEncoded()).isEqualTo(issued.privateKey().getEncoded());
            assertThat(source.getBundleForTrustDomain(TrustDomain.parse(TD)).getX509Authorities())
                    .containsExactly(ca.signingCertificate());

            // Past half of the validity the manager renews; the stream carries the new certificate.
            scheduler.advance(Duration.ofMinutes(31));
            X509Svid renewed = manager.current(cart).orElseThrow();
            assertThat(renewed.leaf()).isNotEqualTo(issued.leaf());
            BigInteger renewedSerial = renewed.leaf().getSerialNumber();
            await().atMost(Duration.ofSeconds(20))
                    .until(() -> source.getX509Svid().getLeaf().getSerialNumber().equals(renewedSerial));
            assertThat(source.getX509Svid().getPrivateKey().getEncoded())
                    .isEqualTo(renewed.privateKey().getEncoded());
        } finally {
            source.close();
        }
    }

    @Test
    void bundlesStreamAndFollowRootRotation() throws Exception {
        WorkloadApiClient client = DefaultWorkloadApiClient
                .newClient(DefaultWorkloadApiClient.ClientOptions.builder().spiffeSocketPath(address()).build());
        try {
            X509BundleSet bundles = client.fetchX509Bundles();
            assertThat(bundles.getBundleForTrustDomain(TrustDomain.parse(TD)).getX509Authorities())
                    .containsExactly(ca.signingCertificate());

            List<X509BundleSet> updates = new CopyOnWriteArrayList<>();
            List<Throwable> errors = new CopyOnWriteArrayList<>();
            client.watchX509Bundles(new Watcher<>() {
                @Override
                public void onUpdate(X509BundleSet update) {
                    updates.add(update);
                }

                @Override
                public void onError(Throwable error) {
                    errors.add(error);
                }
            });
            await().atMost(Duration.ofSeconds(20)).until(() -> !updates.isEmpty());
            X509Certificate newRoot = ca.addRoot();
            server.bundleChanged();
            await().atMost(Duration.ofSeconds(20)).until(() -> updates.get(updates.size() - 1)
                    .getBundleForTrustDomain(TrustDomain.parse(TD)).getX509Authorities().contains(newRoot));
            assertThat(updates.get(updates.size() - 1).getBundleForTrustDomain(TrustDomain.parse(TD))
                    .getX509Authorities()).containsExactlyInAnyOrder(ca.signingCertificate(), newRoot);
            assertThat(errors).isEmpty();
        } finally {
            client.close();
        }
    }

    @Test
    void callsWithoutTheSecurityHeaderAreInvalidArguments() throws Exception {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        ManagedChannel channel = NettyChannelBuilder.forAddress(UnixDomainSocketAddress.of(server.socket()))
                .channelType(NioDomainSocketChannel.class).eventLoopGroup(group)
                .withOption(io.netty.channel.ChannelOption.SO_KEEPALIVE, null).usePlaintext().build();
        try {
            var stub = SpiffeWorkloadAPIGrpc.newBlockingStub(channel).withDeadlineAfter(20, TimeUnit.SECONDS);
            assertThatThrownBy(() -> stub.fetchX509SVID(X509SVIDRequest.getDefaultInstance()).hasNext())
                    .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                        assertThat(e.getStatus().getDescription())
                                .contains("requires metadata 'workload.spiffe.io: true'");
                    });
            assertThatThrownBy(() -> stub.fetchX509Bundles(X509BundlesRequest.getDefaultInstance()).hasNext())
                    .isInstanceOfSatisfying(StatusRuntimeException.class,
                            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT));
            assertThat(manager.identities()).as("nothing was fetched for the refused call").isEmpty();
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    @Test
    void jwtSvidsAreNotServed() throws Exception {
        WorkloadApiClient client = DefaultWorkloadApiClient
                .newClient(DefaultWorkloadApiClient.ClientOptions.builder().spiffeSocketPath(address()).build());
        try {
            assertThatThrownBy(() -> client.fetchJwtSvid("some-audience")).hasStackTraceContaining("UNIMPLEMENTED");
        } finally {
            client.close();
        }
    }

    @Test
    void closeRemovesTheSocket() {
        assertThat(Files.exists(server.socket())).isTrue();
        server.close();
        assertThat(Files.exists(server.socket())).isFalse();
    }
}
