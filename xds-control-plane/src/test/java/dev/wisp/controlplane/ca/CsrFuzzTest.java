package dev.wisp.controlplane.ca;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.wisp.api.ca.v1.CertificateRequest;
import dev.wisp.api.ca.v1.CertificateResponse;
import dev.wisp.controlplane.xds.NodeAuthInterceptor;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.testing.GrpcMessages;
import dev.wisp.testing.RecordingObserver;
import io.grpc.Context;
import io.grpc.Status;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Certificate requests as the control plane's CA service receives them from an authenticated node
 * (the protobuf message, decoded as gRPC would, then {@link CertificateService#createCertificate}):
 * whatever the bytes — CSR text, validity, identity — the caller gets exactly one answer, either a
 * chain for an identity its node may hold or INVALID_ARGUMENT / PERMISSION_DENIED; never another
 * status, an exception thrown to gRPC, or a certificate for a service account of another node.
 */
class CsrFuzzTest {
    static final String ALLOWED = "spiffe://cluster.local/ns/shop/sa/web";
    static final CertificateAuthority CA = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
            (node, ns, sa) -> node.equals("node-a") && ns.equals("shop") && sa.equals("web")));
    static final CertificateService SERVICE = new CertificateService(() -> CA, new SimpleMeterRegistry(),
            new dev.wisp.controlplane.xds.Refusals(new SimpleMeterRegistry()), new NodeRateLimit(Integer.MAX_VALUE,
                    1e9, System::nanoTime));

    /** What the caller saw. */
    static RecordingObserver<CertificateResponse> ask(CertificateRequest req) {
        RecordingObserver<CertificateResponse> a = new RecordingObserver<>();
        Context.current().withValue(NodeAuthInterceptor.NODE, "node-a").run(() -> SERVICE.createCertificate(req, a));
        return a;
    }

    @FuzzTest(maxDuration = "10s")
    void anyRequestFromANode(byte[] message) {
        GrpcMessages.decode(CertificateRequest.parser(), message).map(CsrFuzzTest::ask).ifPresent(
                CsrFuzzTest::assertExactlyOneAnswer);
    }

    /** Either one chain and completion, or one INVALID_ARGUMENT / PERMISSION_DENIED and nothing else. */
    static void assertExactlyOneAnswer(RecordingObserver<CertificateResponse> a) {
        assertThat(a.ends()).hasSize(1);
        if (a.ends().getFirst().isOk()) {
            assertThat(a.messages()).hasSize(1);
            assertThat(a.messages().peek().getCertChainCount()).isPositive();
        } else {
            assertThat(a.messages()).isEmpty();
            assertThat(Set.of(Status.Code.INVALID_ARGUMENT, Status.Code.PERMISSION_DENIED))
                    .contains(a.ends().getFirst().getCode());
        }
    }

    /** The harness signs what it should: the node's own service account. */
    @Test
    void aValidRequestIsSigned() {
        RecordingObserver<CertificateResponse> a = ask(request(ALLOWED, 3600));
        assertThat(a.ends()).extracting(Status::getCode).containsExactly(Status.Code.OK);
        assertThat(a.messages()).hasSize(1);
        assertThat(ask(request("spiffe://cluster.local/ns/shop/sa/admin", 3600)).ends())
                .extracting(Status::getCode).containsExactly(Status.Code.PERMISSION_DENIED);
    }

    static CertificateRequest request(String id, long validity) {
        return CertificateRequest.newBuilder().setCsr(dev.wisp.spiffe.CertificateRequest.generate(SpiffeId.parse(id))
                .pem()).setValiditySeconds(validity).setIdentity(id).build();
    }

    /** Writes the seed corpus when {@code -Dwisp.fuzz.writeSeeds=DIR} is given (run once by hand). */
    @Test
    void seedsCanBeRegenerated() throws IOException {
        String dir = System.getProperty("wisp.fuzz.writeSeeds");
        if (dir != null) {
            Path d = Files.createDirectories(Path.of(dir));
            Files.write(d.resolve("valid"), request(ALLOWED, 3600).toByteArray());
            Files.write(d.resolve("other-node"), request("spiffe://cluster.local/ns/shop/sa/admin", 0)
                    .toByteArray());
            Files.write(d.resolve("huge-validity"), request(ALLOWED, Long.MAX_VALUE).toByteArray());
            Files.write(d.resolve("identity-mismatch"), request(ALLOWED, 60).toBuilder()
                    .setIdentity("spiffe://cluster.local/ns/shop/sa/other").build().toByteArray());
        }
        assertThat(request(ALLOWED, 1).toByteArray().length).isGreaterThan(300);
    }
}
