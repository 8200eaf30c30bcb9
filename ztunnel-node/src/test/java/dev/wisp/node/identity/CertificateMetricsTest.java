package dev.wisp.node.identity;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.spiffe.manager.CertificateManager;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * {@link CertificateMetrics}: one row per held identity with the seconds until its certificate
 * expires, negative once it expired unrenewed, gone once released; real certificates from a CA.
 */
class CertificateMetricsTest {
    static final CertificateAuthority CA = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
            NodeAuthorizer.unrestricted()));
    static final SpiffeId NODE = IdentityProvider.nodeId("cluster.local", "n1");
    static final SpiffeId SERVER = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/server");

    /** Holds what the test says; {@code current} is empty for an identity whose certificate expired. */
    static final class Held implements CertificateManager {
        final Map<SpiffeId, X509Svid> valid = new LinkedHashMap<>();
        final Map<SpiffeId, Boolean> identities = new LinkedHashMap<>();
        final List<Consumer<X509Svid>> listeners = new ArrayList<>();

        void issue(X509Svid svid) {
            identities.put(svid.id(), true);
            valid.put(svid.id(), svid);
            listeners.forEach(l -> l.accept(svid));
        }

        @Override
        public CompletableFuture<X509Svid> fetch(SpiffeId id) {
            return CompletableFuture.completedFuture(valid.get(id));
        }

        @Override
        public Optional<X509Svid> current(SpiffeId id) {
            return Optional.ofNullable(valid.get(id));
        }

        @Override
        public void release(SpiffeId id) {
            identities.remove(id);
            valid.remove(id);
        }

        @Override
        public Set<SpiffeId> identities() {
            return Set.copyOf(identities.keySet());
        }

        @Override
        public AutoCloseable addListener(Consumer<X509Svid> listener) {
            listeners.add(listener);
            return () -> listeners.remove(listener);
        }

        @Override
        public void close() {}
    }

    final Held held = new Held();
    final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

    Runnable bind(Instant now) {
        return CertificateMetrics.bind(held, registry, Clock.fixed(now, ZoneOffset.UTC));
    }

    Optional<Double> seconds(SpiffeId id) {
        Gauge g = registry.find(CertificateMetrics.NAME).tag("identity", id.toString()).gauge();
        return Optional.ofNullable(g).map(Gauge::value);
    }

    @Test
    void eachHeldIdentityHasTheSecondsUntilItsCertificateExpires() {
        X509Svid node = CA.issue(NODE, Duration.ofHours(24), "n1");
        held.issue(node);
        Runnable refresh = bind(node.notAfter().minusSeconds(3600));
        X509Svid server = CA.issue(SERVER, Duration.ofHours(2), "n1");
        held.issue(server);
        refresh.run();
        assertThat(seconds(NODE)).contains(3600.0);
        assertThat(seconds(SERVER)).hasValueSatisfying(s -> assertThat(s).isEqualTo(Duration.between(node
                .notAfter().minusSeconds(3600), server.notAfter()).toSeconds()));
        assertThat(registry.scrape()).contains("istio_agent_cert_expiry_seconds{identity=\"" + NODE + "\"} 3600.0");
    }

    @Test
    void anExpiredUnrenewedCertificateIsNegativeAndAReleasedIdentityIsGone() {
        X509Svid server = CA.issue(SERVER, Duration.ofHours(1), "n1");
        Runnable refresh = bind(server.notAfter().plusSeconds(90));
        held.issue(server);
        held.valid.remove(SERVER); // expired: the manager no longer offers it, and no renewal came
        refresh.run();
        assertThat(seconds(SERVER)).contains(-90.0);
        held.release(SERVER);
        refresh.run();
        assertThat(seconds(SERVER)).isEmpty();
        assertThat(registry.scrape()).doesNotContain("sa/server");
    }

    @Test
    void anIdentityWithoutACertificateYetHasNoRow() {
        held.identities.put(SERVER, true);
        bind(Instant.now()).run();
        assertThat(seconds(SERVER)).isEmpty();
    }
}
