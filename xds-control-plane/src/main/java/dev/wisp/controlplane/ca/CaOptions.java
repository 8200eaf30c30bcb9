package dev.wisp.controlplane.ca;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's CA settings: an operator's CA in Istio's {@code cacerts} layout (used when the
 * directory holds its files; an empty or absent directory, as an optional Secret mounts it, leaves
 * the self-signed CA of the state directory), and the lifetime of workload certificates.
 *
 * @param workloadCertTtl every certificate's lifetime (agents renew at half of it), from
 *     {@link #MIN_TTL} to {@link #MAX_TTL}; empty: the CA's default (24 h)
 */
public record CaOptions(Optional<Path> cacerts, Optional<Duration> workloadCertTtl) {
    private static final Logger log = LoggerFactory.getLogger(CaOptions.class);
    /** Short enough for a test to see many renewals; renewal at half-life then runs every 15 s. */
    public static final Duration MIN_TTL = Duration.ofSeconds(30);
    public static final Duration MAX_TTL = CaSettings.DEFAULT_TTL;
    public static final CaOptions DEFAULTS = new CaOptions(Optional.empty(), Optional.empty());

    public CaOptions {
        requireNonNull(cacerts, "cacerts");
        requireNonNull(workloadCertTtl, "workloadCertTtl");
        workloadCertTtl.ifPresent(t -> {
            if (t.compareTo(MIN_TTL) < 0 || t.compareTo(MAX_TTL) > 0) {
                throw new IllegalArgumentException("--workload-cert-ttl: " + t.toSeconds() + "s is outside "
                        + MIN_TTL.toSeconds() + "s to " + MAX_TTL.toHours() + "h");
            }
        });
    }

    /** Whether the CA is the operator's ({@code cacerts} holds its files). */
    public boolean pluggedIn() {
        return cacerts.isPresent() && CertificateAuthority.hasCacerts(cacerts.get());
    }

    /** The CA: the operator's when plugged in, else the one kept in {@code caDir} (created if absent). */
    public CertificateAuthority open(Path caDir, String trustDomain, NodeAuthorizer authorizer) throws IOException {
        CaSettings settings = CaSettings.of(trustDomain, authorizer);
        if (workloadCertTtl.isPresent()) {
            settings = settings.withMaxTtl(workloadCertTtl.get()).withDefaultTtl(workloadCertTtl.get());
        }
        if (pluggedIn()) {
            log.info("CA: the operator's, from {} (Istio's cacerts layout)", cacerts.get());
            return CertificateAuthority.fromCacerts(cacerts.get(), settings);
        }
        cacerts.ifPresent(d -> log.info("CA: no plug-in CA in {}; the self-signed CA in {}", d, caDir));
        return CertificateAuthority.createOrLoad(caDir, settings);
    }
}
