package dev.wisp.controlplane.ca;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.ca.v1.CertificateRequest;
import dev.wisp.api.ca.v1.CertificateResponse;
import dev.wisp.api.ca.v1.CertificateServiceGrpc;
import dev.wisp.api.ca.v1.TrustBundleRequest;
import dev.wisp.api.ca.v1.TrustBundleResponse;
import dev.wisp.controlplane.xds.NodeAuthInterceptor;
import dev.wisp.controlplane.xds.Refusals;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.SigningRefusedException;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateEncodingException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Certificate signing for node agents ({@code wisp/ca.proto}). The caller is the node its
 * credential authenticates ({@link NodeAuthInterceptor}); the CA's node authorization, fed from the
 * model, lets it obtain certificates only for service accounts of pods on that node.
 */
public final class CertificateService extends CertificateServiceGrpc.CertificateServiceImplBase {
    private static final Logger log = LoggerFactory.getLogger(CertificateService.class);
    /** A P-256 CSR in PEM is under 1 KiB; anything far larger is not one. */
    static final int MAX_CSR_CHARS = 16 << 10;
    /**
     * Certificate requests a node may make: 64 at once (a node starting with many service accounts),
     * then 8 a second. Renewal needs one request per identity per half-life, far below that.
     */
    static final int CSR_BURST = 64;
    static final double CSRS_PER_SECOND = 8;
    private static final Status NO_CA = Status.UNAVAILABLE
            .withDescription("the control plane has no valid configuration yet; retry");
    private final Supplier<CertificateAuthority> ca;
    private final Set<ServerCallStreamObserver<TrustBundleResponse>> watchers = ConcurrentHashMap.newKeySet();
    private final MeterRegistry registry;
    private final Refusals refusals;
    private final NodeRateLimit rateLimit;

    /** {@code ca} returns null while no CA is ready (no valid configuration read yet). */
    public CertificateService(Supplier<CertificateAuthority> ca, MeterRegistry registry, Refusals refusals) {
        this(ca, registry, refusals, new NodeRateLimit(CSR_BURST, CSRS_PER_SECOND, System::nanoTime));
    }

    CertificateService(Supplier<CertificateAuthority> ca, MeterRegistry registry, Refusals refusals,
            NodeRateLimit rateLimit) {
        this.ca = requireNonNull(ca, "ca");
        this.registry = requireNonNull(registry, "registry");
        this.refusals = requireNonNull(refusals, "refusals");
        this.rateLimit = requireNonNull(rateLimit, "rateLimit");
    }

    @Override
    public void createCertificate(CertificateRequest req, StreamObserver<CertificateResponse> out) {
        String node = NodeAuthInterceptor.NODE.get();
        CertificateAuthority authority = ca.get();
        if (authority == null) {
            out.onError(NO_CA.asRuntimeException());
            return;
        }
        if (!rateLimit.tryAcquire(node)) {
            refuse(out, node, Status.RESOURCE_EXHAUSTED, Refusals.Reason.CSR_RATE_LIMITED, "more than " + CSR_BURST
                    + " certificate requests at once or " + CSRS_PER_SECOND + " a second; retry later");
            return;
        }
        if (req.getCsr().length() > MAX_CSR_CHARS) {
            refuse(out, node, Status.INVALID_ARGUMENT, Refusals.Reason.CSR_INVALID,
                    "csr larger than " + MAX_CSR_CHARS + " characters");
            return;
        }
        try {
            List<X509Certificate> chain = authority.sign(req.getCsr().getBytes(StandardCharsets.US_ASCII),
                    req.getValiditySeconds() > 0 ? Duration.ofSeconds(req.getValiditySeconds()) : null, node);
            String granted = uriSan(chain.getFirst());
            if (!req.getIdentity().isEmpty() && !req.getIdentity().equals(granted)) {
                refuse(out, node, Status.INVALID_ARGUMENT, Refusals.Reason.CSR_INVALID, "identity '" + req.getIdentity()
                        + "' differs from the CSR's URI SAN '" + granted + "'");
                return;
            }
            CertificateResponse.Builder r = CertificateResponse.newBuilder();
            for (X509Certificate c : chain) {
                r.addCertChain(pem(c));
            }
            for (X509Certificate root : authority.bundle().roots()) {
                r.addTrustBundle(pem(root));
            }
            Counter.builder("wisp_ca_certificates_issued").register(registry).increment();
            log.info("issued {} to node {} (serial {}, issuer {}, until {})", granted, node,
                    chain.getFirst().getSerialNumber().toString(16),
                    chain.getFirst().getIssuerX500Principal().getName(),
                    chain.getFirst().getNotAfter().toInstant());
            out.onNext(r.build());
            out.onCompleted();
        } catch (SigningRefusedException e) {
            boolean notAuthorized = e.reason() == SigningRefusedException.Reason.NOT_AUTHORIZED;
            refuse(out, node, notAuthorized ? Status.PERMISSION_DENIED : Status.INVALID_ARGUMENT, notAuthorized
                    ? Refusals.Reason.CSR_NOT_AUTHORIZED
                    : Refusals.Reason.CSR_INVALID, e.getMessage());
        }
    }

    /** Counts and (rate-limited) logs the refusal, then ends the call with {@code status}. */
    private void refuse(StreamObserver<?> out, String node, Status status, Refusals.Reason reason, String message) {
        refusals.refuse(reason, node, "certificate: " + message);
        Counter.builder("wisp_ca_certificates_refused").tag("code", status.getCode().name()).register(registry)
                .increment();
        out.onError(status.withDescription(message).asRuntimeException());
    }

    @Override
    public void trustBundle(TrustBundleRequest req, StreamObserver<TrustBundleResponse> out) {
        CertificateAuthority authority = ca.get();
        if (authority == null) {
            out.onError(NO_CA.asRuntimeException());
            return;
        }
        out.onNext(bundleResponse(authority));
        out.onCompleted();
    }

    /**
     * The bundle now, then at each {@link #bundleChanged()} while the call is open. The current
     * bundle is read inside the stream's monitor at each send, so a send racing a change can only
     * repeat the newest bundle, never deliver an older one after it.
     */
    @Override
    public void watchTrustBundle(TrustBundleRequest req, StreamObserver<TrustBundleResponse> out) {
        if (ca.get() == null) {
            out.onError(NO_CA.asRuntimeException());
            return;
        }
        ServerCallStreamObserver<TrustBundleResponse> stream = (ServerCallStreamObserver<TrustBundleResponse>) out;
        stream.setOnCancelHandler(() -> watchers.remove(stream));
        watchers.add(stream);
        send(stream);
    }

    /** Sends the CA's bundle to every open {@code WatchTrustBundle} call (after a rotation step). */
    public void bundleChanged() {
        watchers.forEach(this::send);
    }

    /** Open {@code WatchTrustBundle} calls: the agents and waypoints a bundle change reaches at once. */
    public int bundleWatchers() {
        return watchers.size();
    }

    private void send(ServerCallStreamObserver<TrustBundleResponse> stream) {
        synchronized (stream) {
            CertificateAuthority authority = ca.get();
            if (stream.isCancelled() || authority == null) {
                return;
            }
            try {
                stream.onNext(bundleResponse(authority));
            } catch (RuntimeException e) {
                watchers.remove(stream);
                log.debug("a trust bundle watch ended while sending", e);
            }
        }
    }

    private static TrustBundleResponse bundleResponse(CertificateAuthority authority) {
        TrustBundleResponse.Builder r = TrustBundleResponse.newBuilder().setTrustDomain(authority.trustDomain());
        authority.bundle().roots().forEach(root -> r.addRoots(pem(root)));
        return r.build();
    }

    static String uriSan(X509Certificate c) {
        try {
            if (c.getSubjectAlternativeNames() != null) {
                for (List<?> san : c.getSubjectAlternativeNames()) {
                    if (Integer.valueOf(6).equals(san.get(0))) {
                        return (String) san.get(1);
                    }
                }
            }
        } catch (CertificateParsingException e) {
            throw new IllegalStateException("the CA issued an unparseable certificate", e);
        }
        throw new IllegalStateException("the CA issued a certificate without a URI SAN");
    }

    static String pem(X509Certificate c) {
        try {
            return "-----BEGIN CERTIFICATE-----\n"
                    + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(c.getEncoded())
                    + "\n-----END CERTIFICATE-----\n";
        } catch (CertificateEncodingException e) {
            throw new IllegalStateException("cannot encode a certificate the CA issued", e);
        }
    }
}
