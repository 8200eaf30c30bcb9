package dev.wisp.node.controlplane;

import dev.wisp.api.ca.v1.CertificateRequest;
import dev.wisp.api.ca.v1.CertificateResponse;
import dev.wisp.api.ca.v1.CertificateServiceGrpc;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.manager.CertificateSigner;
import dev.wisp.spiffe.tls.PeerRejectedException;
import dev.wisp.spiffe.tls.SvidVerifier;
import io.grpc.CallCredentials;
import io.grpc.Channel;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * {@link CertificateSigner} over {@code wisp/ca.proto}: the CSR goes as PEM with the identity it
 * names; the returned chain is parsed, and the returned roots replace the trust bundle when they
 * differ (root rotation). Completes on a gRPC thread. It holds nothing of its own but the channel, the
 * call's credentials and the roots it updates: a value of the three.
 */
record GrpcCertificateSigner(Channel channel, CallCredentials credentials, TrustedRoots bundle)
        implements
            CertificateSigner {
    private static final Duration DEADLINE = Duration.ofSeconds(10);

    @Override
    public CompletableFuture<List<X509Certificate>> sign(SpiffeId id, byte[] csrDer, Duration ttl) {
        CompletableFuture<List<X509Certificate>> result = new CompletableFuture<>();
        CertificateRequest request = CertificateRequest.newBuilder().setCsr(csrPem(csrDer))
                .setValiditySeconds(ttl == null ? 0 : ttl.toSeconds()).setIdentity(id.toString()).build();
        CertificateServiceGrpc.newStub(channel).withCallCredentials(credentials)
                .withDeadlineAfter(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)
                .createCertificate(request, new StreamObserver<>() {
                    @Override
                    public void onNext(CertificateResponse r) {
                        try {
                            List<X509Certificate> chain = TrustedRoots.parse(r.getCertChainList());
                            if (chain.isEmpty()) {
                                throw new CertificateException("the control plane returned an empty chain");
                            }
                            if (r.getTrustBundleCount() > 0) {
                                bundle.update(r.getTrustBundleList());
                            }
                            verifiable(chain, r.getTrustBundleCount() > 0
                                    ? TrustBundle.of(bundle.get().trustDomain(), TrustedRoots.parse(r
                                            .getTrustBundleList()).toArray(X509Certificate[]::new))
                                    : bundle.get());
                            result.complete(chain);
                        } catch (CertificateException | RuntimeException e) {
                            result.completeExceptionally(new CertificateException(
                                    "the control plane's answer for " + id + " is unusable: " + e.getMessage(), e));
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        result.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                        result.complete(List.of());
                    }
                });
        return result;
    }

    /**
     * The signed chain must verify against the roots the control plane answered with, as every peer
     * will check it; a chain that does not (a CA fault) is refused here, so that the certificate
     * manager asks again, instead of being presented and refused for its whole life. Checked at the
     * latest start of the chain's certificates (an intermediate may be younger than the backdated
     * leaf): clock skew is not this check's business.
     */
    static void verifiable(List<X509Certificate> chain, TrustBundle roots) throws CertificateException {
        java.time.Instant at = chain.stream().map(c -> c.getNotBefore().toInstant()).max(java.time.Instant::compareTo)
                .orElseThrow();
        try {
            SvidVerifier.verify(chain.toArray(X509Certificate[]::new), roots, at, Set.of());
        } catch (PeerRejectedException e) {
            throw new CertificateException("the signed certificate does not verify against the trust bundle sent "
                    + "with it: " + e.getMessage(), e);
        }
    }

    private static String csrPem(byte[] der) {
        return "-----BEGIN CERTIFICATE REQUEST-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der)
                + "\n-----END CERTIFICATE REQUEST-----\n";
    }
}
