package dev.wisp.spiffe.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The verified-chain cache serves only what a full verification would accept: each case counts the
 * full verifications, so "served from the cache" and "verified again" are told apart, and each
 * refusal names the rule that refused.
 */
class VerifiedChainsTest {
    static final String TD = "cluster.local";
    static final SpiffeId SERVER = SpiffeId.forServiceAccount(TD, "shop", "payments");
    static final SpiffeId OTHER = SpiffeId.forServiceAccount(TD, "shop", "cart");

    final CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of(TD,
            NodeAuthorizer.unrestricted()));
    final AtomicInteger full = new AtomicInteger();
    final VerifiedChains cache = new VerifiedChains(8, (chain, bundle, now, expected) -> {
        full.incrementAndGet();
        return SvidVerifier.verify(chain, bundle, now, expected);
    });

    static X509Certificate[] chain(X509Svid svid) {
        return svid.chain().toArray(X509Certificate[]::new);
    }

    @Test
    void anAcceptedChainIsVerifiedOnceUnderTheSameBundle() throws Exception {
        X509Certificate[] chain = chain(ca.issue(SERVER, null, "n"));
        Instant now = Instant.now();
        for (int i = 0; i < 5; i++) {
            assertThat(cache.verify(chain, ca.bundle(), now, Set.of(SERVER))).isEqualTo(SERVER);
        }
        assertThat(full.get()).isEqualTo(1);
        // An equal bundle object (as a node agent re-reads it) hits too.
        TrustBundle copy = new TrustBundle(TD, ca.bundle().roots());
        assertThat(cache.verify(chain.clone(), copy, now, Set.of())).isEqualTo(SERVER);
        assertThat(full.get()).isEqualTo(1);
    }

    @Test
    void aForeignChainIsRefusedEveryTimeAndNeverRemembered() {
        CertificateAuthority foreign = CertificateAuthority.inMemory(CaSettings.of(TD, NodeAuthorizer.unrestricted()));
        X509Certificate[] chain = chain(foreign.issue(SERVER, null, "n"));
        for (int i = 0; i < 3; i++) {
            assertThatThrownBy(() -> cache.verify(chain, ca.bundle(), Instant.now(), Set.of(SERVER)))
                    .isInstanceOfSatisfying(PeerRejectedException.class,
                            e -> assertThat(e.kind()).isEqualTo(PeerRejectedException.Kind.UNTRUSTED_ISSUER));
        }
        assertThat(full.get()).isEqualTo(3);
        assertThat(cache.size()).isZero();
    }

    @Test
    void aChangedBundleVerifiesAgainAndARetiredRootIsRefused() throws Exception {
        X509Certificate[] chain = chain(ca.issue(SERVER, null, "n"));
        Instant now = Instant.now();
        cache.verify(chain, ca.bundle(), now, Set.of());
        X509Certificate oldRoot = ca.signingCertificate();

        X509Certificate newRoot = ca.addRoot(); // the bundle gains a root: verified again, still accepted
        assertThat(cache.verify(chain, ca.bundle(), now, Set.of())).isEqualTo(SERVER);
        assertThat(full.get()).isEqualTo(2);

        ca.switchSigning(newRoot);
        ca.retireRoot(oldRoot); // the chain's root leaves the bundle: refused although it was remembered
        assertThatThrownBy(() -> cache.verify(chain, ca.bundle(), now, Set.of()))
                .isInstanceOfSatisfying(PeerRejectedException.class,
                        e -> assertThat(e.kind()).isEqualTo(PeerRejectedException.Kind.UNTRUSTED_ISSUER));
        assertThat(full.get()).isEqualTo(3);
    }

    @Test
    void aRememberedChainIsRefusedOnceExpiredOrBeforeItIsValid() throws Exception {
        X509Svid svid = ca.issue(SERVER, Duration.ofHours(1), "n");
        X509Certificate[] chain = chain(svid);
        cache.verify(chain, ca.bundle(), Instant.now(), Set.of());
        assertThat(full.get()).isEqualTo(1);

        assertThatThrownBy(() -> cache.verify(chain, ca.bundle(), svid.notAfter().plusSeconds(1), Set.of()))
                .isInstanceOfSatisfying(PeerRejectedException.class,
                        e -> assertThat(e.kind()).isEqualTo(PeerRejectedException.Kind.NOT_VALID_NOW));
        assertThatThrownBy(() -> cache.verify(chain, ca.bundle(), svid.notBefore().minusSeconds(1), Set.of()))
                .isInstanceOfSatisfying(PeerRejectedException.class,
                        e -> assertThat(e.kind()).isEqualTo(PeerRejectedException.Kind.NOT_VALID_NOW));
        assertThat(full.get()).isEqualTo(3);
    }

    @Test
    void theExpectedIdentityIsCheckedOnEveryHit() throws Exception {
        X509Certificate[] chain = chain(ca.issue(SERVER, null, "n"));
        cache.verify(chain, ca.bundle(), Instant.now(), Set.of(SERVER));
        assertThatThrownBy(() -> cache.verify(chain, ca.bundle(), Instant.now(), Set.of(OTHER)))
                .isInstanceOfSatisfying(PeerRejectedException.class, e -> {
                    assertThat(e.kind()).isEqualTo(PeerRejectedException.Kind.UNEXPECTED_IDENTITY);
                    assertThat(e.claimedId()).contains(SERVER);
                });
        assertThat(full.get()).isEqualTo(1);
    }

    @Test
    void aRenewedCertificateIsAnotherEntryAndTheCacheIsBounded() throws Exception {
        Instant now = Instant.now();
        cache.verify(chain(ca.issue(SERVER, null, "n")), ca.bundle(), now, Set.of());
        cache.verify(chain(ca.issue(SERVER, null, "n")), ca.bundle(), now, Set.of());
        assertThat(full.get()).isEqualTo(2);
        for (int i = 0; i < 20; i++) {
            cache.verify(chain(ca.issue(OTHER, null, "n")), ca.bundle(), now, Set.of());
        }
        assertThat(cache.size()).isEqualTo(8);
    }
}
