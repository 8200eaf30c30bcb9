package dev.wisp.node.controlplane;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.InMemoryNodeAuthorizer;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The agent's trust bundle follows root rotation from two racing sources (the bundle watch and each
 * certificate's answer): a late answer carrying the bundle from before a step must not undo it.
 */
class TrustedRootsTest {
    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final X509Certificate OLD = root(T0);
    private static final X509Certificate NEW = root(T0.plusSeconds(3600));
    private static final X509Certificate NEWER = root(T0.plusSeconds(7200));
    private static final X509Certificate OTHER_CA = root(T0.minusSeconds(3600));

    @Test
    void followsEveryRotationStepInOrder() throws Exception {
        TrustedRoots roots = new TrustedRoots(TrustBundle.of("cluster.local", OLD));
        AtomicInteger changes = new AtomicInteger();
        roots.onChange(changes::incrementAndGet);

        roots.update(pems(OLD, NEW)); // add
        assertThat(roots.get().roots()).containsExactlyInAnyOrder(OLD, NEW);
        roots.update(pems(NEW)); // retire
        assertThat(roots.get().roots()).containsExactly(NEW);
        roots.update(pems(NEW, NEWER)); // the next rotation's add
        roots.update(pems(NEWER)); // and its retire
        assertThat(roots.get().roots()).containsExactly(NEWER);
        assertThat(changes).hasValue(4);
    }

    @Test
    void aLateAnswerFromBeforeTheAddDoesNotDropTheAddedRoot() throws Exception {
        TrustedRoots roots = new TrustedRoots(TrustBundle.of("cluster.local", OLD));
        roots.update(pems(OLD, NEW)); // the watch: add
        roots.update(pems(OLD)); // a certificate signed just before the add, answered after it
        assertThat(roots.get().roots()).containsExactlyInAnyOrder(OLD, NEW);
    }

    @Test
    void aLateAnswerFromBeforeTheRetireDoesNotBringTheRetiredRootBack() throws Exception {
        TrustedRoots roots = new TrustedRoots(TrustBundle.of("cluster.local", OLD, NEW));
        roots.update(pems(NEW)); // the watch: retire
        roots.update(pems(OLD, NEW)); // a certificate signed just before the retire
        assertThat(roots.get().roots()).containsExactly(NEW);
    }

    @Test
    void aLateAnswerFromBeforeARetireAndTheNextAddIsIgnored() throws Exception {
        TrustedRoots roots = new TrustedRoots(TrustBundle.of("cluster.local", NEW, NEWER));
        roots.update(pems(OLD, NEW));
        assertThat(roots.get().roots()).containsExactlyInAnyOrder(NEW, NEWER);
    }

    @Test
    void aReplacedCaIsTakenEvenWithAnOlderRoot() throws Exception {
        TrustedRoots roots = new TrustedRoots(TrustBundle.of("cluster.local", OLD, NEW));
        roots.update(pems(OTHER_CA));
        assertThat(roots.get().roots()).containsExactly(OTHER_CA);
    }

    @Test
    void staleOnlyForEarlierStepsOfTheSameRotation() {
        assertThat(TrustedRoots.stale(List.of(OLD, NEW), List.of(OLD))).isTrue();
        assertThat(TrustedRoots.stale(List.of(NEW), List.of(OLD, NEW))).isTrue();
        assertThat(TrustedRoots.stale(List.of(OLD), List.of(OLD, NEW))).isFalse();
        assertThat(TrustedRoots.stale(List.of(OLD, NEW), List.of(NEW))).isFalse();
        assertThat(TrustedRoots.stale(List.of(OLD, NEW), List.of(NEW, NEWER))).isFalse();
        assertThat(TrustedRoots.stale(List.of(OLD), List.of(OLD))).isFalse();
        assertThat(TrustedRoots.stale(List.of(NEW), List.of(OTHER_CA))).isFalse();
    }

    private static X509Certificate root(Instant at) {
        return CertificateAuthority.inMemory(CaSettings.of("cluster.local", new InMemoryNodeAuthorizer())
                .withClock(Clock.fixed(at, ZoneOffset.UTC))).signingRoot();
    }

    private static List<String> pems(X509Certificate... certs) throws Exception {
        List<String> out = new ArrayList<>();
        for (X509Certificate c : certs) {
            out.add("-----BEGIN CERTIFICATE-----\n" + Base64.getMimeEncoder().encodeToString(c.getEncoded())
                    + "\n-----END CERTIFICATE-----\n");
        }
        return out;
    }
}
