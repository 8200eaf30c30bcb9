package dev.wisp.controlplane.ca;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.api.ca.v1.CertificateResponse;
import dev.wisp.api.ca.v1.CertificateServiceGrpc;
import dev.wisp.api.ca.v1.TrustBundleRequest;
import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.TestMesh;
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
                .contains("wisp_ca_certificates_refused_total{code=\"PERMISSION_DENIED\"} 1.0");
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
