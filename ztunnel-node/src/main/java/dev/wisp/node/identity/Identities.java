package dev.wisp.node.identity;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.manager.CertificateManager;
import dev.wisp.spiffe.manager.CertificateSigner;
import dev.wisp.spiffe.manager.Scheduler;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * The agent's identities over a {@link CertificateManager}: certificates are requested through a
 * {@link CertificateSigner} (the control plane's CA over gRPC in a cluster; {@link #localSigner}
 * for standalone mode and tests) and renewed at half-life on a dedicated scheduler thread.
 */
public final class Identities implements IdentityProvider, AutoCloseable {
    private static final Duration FETCH_TIMEOUT = Duration.ofSeconds(10);
    private final String trustDomain;
    private final Supplier<TrustBundle> bundle;
    private final CertificateManager manager;
    private final ScheduledExecutorService scheduler;

    private Identities(String trustDomain, CertificateSigner signer, Supplier<TrustBundle> bundle) {
        this.trustDomain = trustDomain;
        this.bundle = bundle;
        this.scheduler = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "wisp-certificates");
            t.setDaemon(true);
            return t;
        });
        this.manager = CertificateManager.builder(signer, Scheduler.of(scheduler)).build();
    }

    /** Identities signed by {@code signer}, verified against {@code bundle} (read at each handshake). */
    public static Identities create(String trustDomain, CertificateSigner signer, Supplier<TrustBundle> bundle) {
        return new Identities(requireNonNull(trustDomain, "trustDomain"), requireNonNull(signer, "signer"),
                requireNonNull(bundle, "bundle"));
    }

    /** Identities signed by a CA held in this process, as node {@code nodeName} (standalone mode, tests). */
    public static Identities local(CertificateAuthority ca, String nodeName) {
        requireNonNull(ca, "ca");
        return create(ca.trustDomain(), localSigner(ca, nodeName), ca::bundle);
    }

    /** A signer that calls {@code ca} directly, on behalf of node {@code nodeName}. */
    public static CertificateSigner localSigner(CertificateAuthority ca, String nodeName) {
        requireNonNull(ca, "ca");
        requireNonNull(nodeName, "nodeName");
        return (id, csr, ttl) -> {
            try {
                List<java.security.cert.X509Certificate> chain = ca.sign(csr, ttl, nodeName);
                return CompletableFuture.completedFuture(chain);
            } catch (RuntimeException e) {
                return CompletableFuture.failedFuture(e);
            }
        };
    }

    @Override
    public String trustDomain() {
        return trustDomain;
    }

    @Override
    public TrustBundle bundle() {
        return bundle.get();
    }

    @Override
    public X509Svid svid(SpiffeId id) throws IdentityException {
        requireNonNull(id, "id");
        var current = manager.current(id);
        if (current.isPresent()) {
            return current.get();
        }
        try {
            return manager.fetch(id).get(FETCH_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new IdentityException("no certificate for " + id + ": " + e.getCause().getMessage()
                    + " (is the CA reachable, and does this node host that service account?)", e.getCause());
        } catch (TimeoutException e) {
            throw new IdentityException("no certificate for " + id + " within " + FETCH_TIMEOUT
                    + ": is the CA reachable?", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IdentityException("interrupted while fetching a certificate for " + id, e);
        }
    }

    /** The certificate manager behind these identities (the Workload API serves pods' SVIDs from it). */
    public CertificateManager certificates() {
        return manager;
    }

    @Override
    public void prefetch(SpiffeId id) {
        manager.fetch(requireNonNull(id, "id"));
    }

    @Override
    public void close() {
        manager.close();
        scheduler.shutdownNow();
    }
}
