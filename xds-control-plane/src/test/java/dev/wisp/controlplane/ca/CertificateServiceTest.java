package dev.wisp.controlplane.ca;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.api.ca.v1.CertificateResponse;
import dev.wisp.api.ca.v1.CertificateServiceGrpc;
import dev.wisp.api.ca.v1.TrustBundleRequest;
import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.RawGrpc;
import dev.wisp.controlplane.TestMesh;
import dev.wisp.controlplane.xds.Refusals;
import dev.wisp.testing.LogCapture;
import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import dev.wisp.node.controlplane.ControlPlaneClient;
import io.grpc.stub.MetadataUtils;
import java.io.ByteArrayInputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Certificate signing over real gRPC: node credentials and node authorization from the model. */
class CertificateServiceTest {
    @TempDir
    Path config;
    @TempDir
    Path state;
    ControlPlane cp;
    ManagedChannel channel;

    @BeforeEach
    void start() throws Exception {
        Files.writeString(config.resolve("mesh.yaml"), TestMesh.YAML);
        cp = ControlPlane.start(new ControlPlane.Options(config, state, new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0)));
        // The file an agent is given with --ca-bundle.
        TrustBundle bundle = TrustBundle.read("cluster.local", cp.caDir().resolve("bundle.pem"));
        channel = ControlPlaneClient.channel("127.0.0.1", cp.xdsPort(), () -> bundle);
    }

    @AfterEach
    void stop() throws InterruptedException {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        cp.close();
    }

    CertificateServiceGrpc.CertificateServiceBlockingStub as(String node) throws Exception {
        Metadata m = new Metadata();
        String token = node == null ? "forged" : Files.readString(cp.credentials().tokenFile(node)).trim();
        m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
        return CertificateServiceGrpc.newBlockingStub(channel)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m));
    }

    static dev.wisp.api.ca.v1.CertificateRequest csr(String id) {
        return dev.wisp.api.ca.v1.CertificateRequest.newBuilder()
                .setCsr(CertificateRequest.generate(SpiffeId.parse(id)).pem())
                .setValiditySeconds(3600)
                .build();
    }

    @Test
    void agentGetsCertificatesForServiceAccountsOfPodsOnItsNode() throws Exception {
        CertificateResponse r = as("node-a").createCertificate(csr("spiffe://cluster.local/ns/shop/sa/web"));
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        X509Certificate leaf = (X509Certificate) cf.generateCertificate(
                new ByteArrayInputStream(r.getCertChain(0).getBytes(StandardCharsets.US_ASCII)));
        X509Certificate root = (X509Certificate) cf.generateCertificate(
                new ByteArrayInputStream(r.getTrustBundle(0).getBytes(StandardCharsets.US_ASCII)));
        assertThat(CertificateService.uriSan(leaf)).isEqualTo("spiffe://cluster.local/ns/shop/sa/web");
        leaf.verify(root.getPublicKey());
        assertThat(leaf.getNotAfter().getTime() - leaf.getNotBefore().getTime()).isLessThanOrEqualTo(3_700_000L);
        assertThat(as("node-a").trustBundle(TrustBundleRequest.getDefaultInstance()).getTrustDomain())
                .isEqualTo("cluster.local");
    }

    @Test
    void serviceAccountWithNoPodOnTheCallersNodeIsRefused() throws Exception {
        // db's only pod runs on node-b.
        assertThatThrownBy(() -> as("node-a").createCertificate(csr("spiffe://cluster.local/ns/data/sa/db")))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
                    assertThat(e.getStatus().getCode()).isEqualTo(io.grpc.Status.Code.PERMISSION_DENIED);
                    assertThat(e.getStatus().getDescription()).contains("node-a").contains("data");
                });
        assertThat(as("node-b").createCertificate(csr("spiffe://cluster.local/ns/data/sa/db")).getCertChainCount())
                .isEqualTo(1);
        assertThat(cp.registry().scrape())
                .contains("wisp_ca_certificates_refused_total{code=\"PERMISSION_DENIED\"} 1.0")
                .contains("wisp_controlplane_refused_total{reason=\"csr_not_authorized\"} 1.0");
    }

    @Test
    void aFloodOfCsrsFromOneNodeIsCutCountedAndLoggedOnce() throws Exception {
        var req = csr("spiffe://cluster.local/ns/shop/sa/web");
        Metadata m = new Metadata();
        m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + Files.readString(cp
                .credentials().tokenFile("node-a")).trim());
        var stub = CertificateServiceGrpc.newFutureStub(channel).withInterceptors(MetadataUtils
                .newAttachHeadersInterceptor(m));
        int flood = 400, issued = 0, limited = 0;
        try (LogCapture logs = new LogCapture(Refusals.class)) {
            // All at once: far more than the burst plus what 8/s refills while they arrive.
            var calls = new java.util.ArrayList<com.google.common.util.concurrent.ListenableFuture<CertificateResponse>>();
            for (int i = 0; i < flood; i++) {
                calls.add(stub.withDeadlineAfter(60, TimeUnit.SECONDS).createCertificate(req));
            }
            for (var c : calls) {
                try {
                    c.get();
                    issued++;
                } catch (java.util.concurrent.ExecutionException e) {
                    assertThat(io.grpc.Status.fromThrowable(e.getCause()).getCode()).isEqualTo(
                            io.grpc.Status.Code.RESOURCE_EXHAUSTED);
                    limited++;
                }
            }
            assertThat(issued).as("the burst, and what the rate refilled meanwhile").isGreaterThanOrEqualTo(
                    CertificateService.CSR_BURST);
            assertThat(limited).as("refused beyond the rate").isPositive();
            assertThat(logs.lines()).as("one line for the whole flood").singleElement().asString().startsWith(
                    "refused csr_rate_limited of node node-a: certificate: more than 64");
        }
        assertThat(cp.registry().scrape()).contains("wisp_controlplane_refused_total{reason=\"csr_rate_limited\"} "
                + limited + ".0");
        // Another node is not held back by node-a's flood.
        assertThat(as("node-b").createCertificate(csr("spiffe://cluster.local/ns/data/sa/db")).getCertChainCount())
                .isEqualTo(1);
    }

    @Test
    void oversizedAndDeeplyNestedMessagesAreRefusedBeforeAnyServiceCode() throws Exception {
        // Field 1 (csr) of 300 KiB: over the control plane's 256 KiB limit for agents' messages.
        byte[] big = new byte[300 << 10];
        big[0] = 0x0a;
        int len = big.length - 4;
        big[1] = (byte) (len & 0x7f | 0x80);
        big[2] = (byte) (len >>> 7 & 0x7f | 0x80);
        big[3] = (byte) (len >>> 14);
        java.util.Arrays.fill(big, 4, big.length, (byte) 'A');
        assertThat(rawCall(big).getCode()).isEqualTo(io.grpc.Status.Code.RESOURCE_EXHAUSTED);
        // 50,000 nested groups of an unknown field: past protobuf's recursion limit, refused while parsing.
        int depth = 50_000;
        byte[] nested = new byte[2 * depth];
        java.util.Arrays.fill(nested, 0, depth, (byte) 0x7b); // field 15, start group
        java.util.Arrays.fill(nested, depth, 2 * depth, (byte) 0x7c); // field 15, end group
        // Refused as node-a's, counted, and a flood of them logs one line.
        try (LogCapture logs = new LogCapture(Refusals.class)) {
            for (int i = 0; i < 20; i++) {
                io.grpc.Status s = rawCall(nested);
                assertThat(s.getCode()).isEqualTo(io.grpc.Status.Code.INVALID_ARGUMENT);
                assertThat(s.getDescription()).contains("nested past protobuf's recursion limit");
            }
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(5)).until(() -> cp.registry()
                    .scrape().contains("wisp_controlplane_refused_total{reason=\"message_refused\"} 21.0"));
            assertThat(logs.lines()).filteredOn(l -> l.contains("message_refused of node node-a")).hasSize(1);
        }
        assertThat(cp.registry().scrape()).doesNotContain("wisp_ca_certificates_issued_total");
        // The server is still there for well-formed requests.
        assertThat(as("node-a").createCertificate(csr("spiffe://cluster.local/ns/shop/sa/web")).getCertChainCount())
                .isEqualTo(1);
    }

    /** Sends {@code body} as a CreateCertificate request of node-a, byte for byte; the call's status. */
    io.grpc.Status rawCall(byte[] body) throws Exception {
        var method = RawGrpc.raw(CertificateServiceGrpc.getCreateCertificateMethod());
        Metadata m = new Metadata();
        m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + Files.readString(cp
                .credentials().tokenFile("node-a")).trim());
        var call = io.grpc.ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(m));
        try {
            io.grpc.stub.ClientCalls.blockingUnaryCall(call, method, io.grpc.CallOptions.DEFAULT.withDeadlineAfter(20,
                    TimeUnit.SECONDS), body);
            return io.grpc.Status.OK;
        } catch (StatusRuntimeException e) {
            return e.getStatus();
        }
    }

    @Test
    void callersWithoutANodeCredentialAreRefused() {
        assertThatThrownBy(() -> as(null).createCertificate(csr("spiffe://cluster.local/ns/shop/sa/web")))
                .isInstanceOfSatisfying(StatusRuntimeException.class,
                        e -> assertThat(e.getStatus().getCode()).isEqualTo(io.grpc.Status.Code.UNAUTHENTICATED));
    }

    @Test
    void identityFieldMustMatchTheCsr() throws Exception {
        var req = csr("spiffe://cluster.local/ns/shop/sa/web").toBuilder()
                .setIdentity("spiffe://cluster.local/ns/shop/sa/other").build();
        assertThatThrownBy(() -> as("node-a").createCertificate(req))
                .isInstanceOfSatisfying(StatusRuntimeException.class, e -> assertThat(e.getStatus().getDescription())
                        .isEqualTo("identity 'spiffe://cluster.local/ns/shop/sa/other' differs from the CSR's URI SAN "
                                + "'spiffe://cluster.local/ns/shop/sa/web'"));
    }
}
