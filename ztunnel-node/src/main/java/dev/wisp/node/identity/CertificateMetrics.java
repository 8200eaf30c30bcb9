package dev.wisp.node.identity;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.manager.CertificateManager;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code istio_agent_cert_expiry_seconds{identity="spiffe://…"}}: for every identity the agent's
 * {@link CertificateManager} holds (its node identity, each local workload's, the pods' Workload API
 * SVIDs), the seconds until its certificate expires — Istio's agent series, with one row per
 * identity because one node agent holds many. Negative when the last certificate issued has expired
 * and no renewal came (the manager no longer offers it, but this remembers its {@code notAfter}),
 * so an alert on {@code < threshold} fires for that too; an identity released (its last pod gone)
 * disappears at the next scrape.
 *
 * <p>The rows change with the identities, so they are rebuilt by the returned refresh, which the
 * caller runs before each scrape (on the scraping thread); the last {@code notAfter} per identity
 * comes from the manager's listener (its renewal thread). Both touch only a concurrent map.
 */
public final class CertificateMetrics {
    static final String NAME = "istio_agent_cert_expiry_seconds";

    private final CertificateManager certificates;
    private final Clock clock;
    private final Map<SpiffeId, Instant> notAfter = new ConcurrentHashMap<>();

    private CertificateMetrics(CertificateManager certificates, Clock clock) {
        this.certificates = certificates;
        this.clock = clock;
    }

    /**
     * Registers the series on {@code registry}; returns the refresh to run before each scrape. The
     * listener it adds to {@code certificates} ends with the manager.
     */
    public static Runnable bind(CertificateManager certificates, MeterRegistry registry, Clock clock) {
        requireNonNull(certificates, "certificates");
        requireNonNull(registry, "registry");
        CertificateMetrics m = new CertificateMetrics(certificates, requireNonNull(clock, "clock"));
        certificates.addListener(m::issued);
        MultiGauge gauge = MultiGauge.builder(NAME).description("seconds until the certificate of each identity the "
                + "agent holds expires (negative: expired and not renewed)").register(registry);
        return () -> gauge.register(m.rows(), true);
    }

    private void issued(X509Svid svid) {
        notAfter.put(svid.id(), svid.notAfter());
    }

    /** One row per held identity that has had a certificate. */
    List<MultiGauge.Row<?>> rows() {
        Set<SpiffeId> held = certificates.identities();
        notAfter.keySet().retainAll(held);
        Instant now = clock.instant();
        List<MultiGauge.Row<?>> rows = new ArrayList<>();
        for (SpiffeId id : held) {
            Optional<Instant> expiry = certificates.current(id).map(X509Svid::notAfter).or(() -> Optional
                    .ofNullable(notAfter.get(id)));
            expiry.ifPresent(e -> rows.add(MultiGauge.Row.of(Tags.of("identity", id.toString()), Duration.between(
                    now, e).toMillis() / 1e3)));
        }
        return rows;
    }
}
