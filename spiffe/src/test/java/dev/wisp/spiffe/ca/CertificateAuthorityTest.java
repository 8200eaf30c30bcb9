package dev.wisp.spiffe.ca;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.SigningRefusedException.MalformedCsrException;
import dev.wisp.spiffe.ca.SigningRefusedException.NotAuthorizedException;
import dev.wisp.spiffe.ca.SigningRefusedException.RequestTooLargeException;
import dev.wisp.spiffe.ca.SigningRefusedException.UnsupportedKeyException;
import dev.wisp.spiffe.internal.X509;
import dev.wisp.spiffe.testing.Csrs;
import dev.wisp.spiffe.testing.MutableClock;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class CertificateAuthorityTest {
    static final String TD = "cluster.local";
    final MutableClock clock = new MutableClock(Instant.parse("2026-11-22T06:00:00Z"));
    final InMemoryNodeAuthorizer pods = new InMemoryNodeAuthorizer().addPod("node-1", "shop", "cart");
    final CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of(TD, pods).withClock(clock));
    final SpiffeId cart = SpiffeId.forServiceAccount(TD, "shop", "cart");

    @Test
    void signsAP256WorkloadCertificateWithOneUriSanForTheDefault24Hours() throws Exception {
        CertificateRequest request = CertificateRequest.generate(cart);
        List<X509Certificate> chain = ca.sign(request.der(), null, "node-1");

        assertThat(chain).hasSize(1);
        X509Certificate leaf = chain.get(0);
        assertThat(X509.uriSans(leaf)).containsExactly("spiffe://cluster.local/ns/shop/sa/cart");
        assertThat(leaf.getBasicConstraints()).isEqualTo(-1);
        assertThat(leaf.getExtendedKeyUsage()).contains("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2");
        assertThat(((ECPublicKey) leaf.getPublicKey()).getParams().getCurve().getField().getFieldSize())
                .isEqualTo(256);
        assertThat(leaf.getNotAfter().toInstant()).isEqualTo(clock.instant().plus(Duration.ofHours(24)));
        assertThat(leaf.getNotBefore().toInstant()).isEqualTo(clock.instant().minus(Duration.ofMinutes(1)));
        leaf.verify(ca.signingCertificate().getPublicKey());
        assertThat(ca.bundle().roots()).containsExactly(ca.signingCertificate());

        X509Svid svid = request.toSvid(chain);
        assertThat(svid.id()).isEqualTo(cart);
        assertThat(svid.notAfter()).isEqualTo(leaf.getNotAfter().toInstant());
    }

    @Test
    void acceptsPemAndCapsTheLifetimeAtTheMaximum() {
        CertificateAuthority capped = CertificateAuthority
                .inMemory(CaSettings.of(TD, pods).withClock(clock).withMaxTtl(Duration.ofHours(2)));
        byte[] pem = CertificateRequest.generate(cart).pem().getBytes(StandardCharsets.US_ASCII);
        X509Certificate leaf = capped.sign(pem, Duration.ofDays(30), "node-1").get(0);
        assertThat(leaf.getNotAfter().toInstant()).isEqualTo(clock.instant().plus(Duration.ofHours(2)));
        X509Certificate shorter = capped.sign(pem, Duration.ofMinutes(10), "node-1").get(0);
        assertThat(shorter.getNotAfter().toInstant()).isEqualTo(clock.instant().plus(Duration.ofMinutes(10)));
    }

    @Test
    void refusesAServiceAccountWithNoPodOnTheCallersNode() {
        byte[] csr = CertificateRequest.generate(cart).der();
        assertThatThrownBy(() -> ca.sign(csr, null, "node-2")).isInstanceOf(NotAuthorizedException.class)
                .hasMessage("node 'node-2' hosts no pod running as service account shop/cart, "
                        + "so it may not obtain spiffe://cluster.local/ns/shop/sa/cart");
        SpiffeId other = SpiffeId.forServiceAccount(TD, "shop", "payments");
        assertThatThrownBy(() -> ca.sign(CertificateRequest.generate(other).der(), null, "node-1"))
                .isInstanceOf(NotAuthorizedException.class).hasMessageContaining("shop/payments");

        pods.addPod("node-2", "shop", "cart");
        assertThat(ca.sign(csr, null, "node-2")).hasSize(1);
        pods.removePod("node-2", "shop", "cart");
        assertThatThrownBy(() -> ca.sign(csr, null, "node-2")).isInstanceOf(NotAuthorizedException.class);
    }

    @Test
    void refusesOtherTrustDomainsAndNonWorkloadIds() {
        byte[] foreign = CertificateRequest.generate(SpiffeId.parse("spiffe://evil.org/ns/shop/sa/cart")).der();
        assertThatThrownBy(() -> ca.sign(foreign, null, "node-1")).isInstanceOf(NotAuthorizedException.class)
                .hasMessageContaining("is in trust domain evil.org; this CA signs only for cluster.local");
        byte[] odd = CertificateRequest.generate(SpiffeId.parse("spiffe://cluster.local/admin")).der();
        assertThatThrownBy(() -> ca.sign(odd, null, "node-1")).isInstanceOf(NotAuthorizedException.class)
                .hasMessageContaining("signs only workload identities");
    }

    @Test
    void refusesWrongKeyTypesNamingTheKey() {
        byte[] rsa = Csrs.csr(Csrs.rsa(), List.of(cart.toString()));
        assertThatThrownBy(() -> ca.sign(rsa, null, "node-1")).isInstanceOf(UnsupportedKeyException.class)
                .hasMessage("the request's key is RSA; only ECDSA P-256 (secp256r1) keys are signed");
        byte[] p384 = Csrs.csr(Csrs.ec("secp384r1"), List.of(cart.toString()));
        assertThatThrownBy(() -> ca.sign(p384, null, "node-1")).isInstanceOf(UnsupportedKeyException.class)
                .hasMessage("the request's EC key is on curve P-384 (secp384r1); only P-256 (secp256r1) is signed");
    }

    @Test
    void refusesMalformedRequestsWithoutCrashing() {
        byte[] good = CertificateRequest.generate(cart).der();
        assertThatThrownBy(() -> ca.sign(new byte[0], null, "node-1")).isInstanceOf(MalformedCsrException.class)
                .hasMessage("the certificate request is empty");
        assertThatThrownBy(() -> ca.sign("garbage".getBytes(StandardCharsets.US_ASCII), null, "node-1"))
                .isInstanceOf(MalformedCsrException.class)
                .hasMessageStartingWith("not a PKCS#10 certificate request (DER or PEM)");
        assertThatThrownBy(() -> ca.sign(Arrays.copyOf(good, good.length / 2), null, "node-1"))
                .isInstanceOf(MalformedCsrException.class);
        assertThatThrownBy(
                () -> ca.sign("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".getBytes(), null,
                        "node-1"))
                .isInstanceOf(MalformedCsrException.class).hasMessage("the PEM block is not a CERTIFICATE REQUEST");

        KeyPair mine = Csrs.ec("secp256r1");
        byte[] forged = Csrs.csr(mine, Csrs.ec("secp256r1"), List.of(cart.toString()));
        assertThatThrownBy(() -> ca.sign(forged, null, "node-1")).isInstanceOf(MalformedCsrException.class)
                .hasMessageContaining("does not verify with its own key (no proof of possession)");

        assertThatThrownBy(() -> ca.sign(Csrs.csr(mine, List.of()), null, "node-1"))
                .isInstanceOf(MalformedCsrException.class).hasMessageContaining("the request has 0 URI SANs");
        assertThatThrownBy(() -> ca.sign(Csrs.csr(mine, List.of(cart.toString(), "spiffe://cluster.local/ns/a/sa/b")),
                null, "node-1")).isInstanceOf(MalformedCsrException.class)
                .hasMessageContaining("the request has 2 URI SANs");
        assertThatThrownBy(() -> ca.sign(Csrs.csr(mine, List.of("https://cluster.local/ns/shop/sa/cart")), null,
                "node-1")).isInstanceOf(MalformedCsrException.class).hasMessageContaining("found 'https'");
    }

    @Test
    void refusesOversizedRequests() {
        byte[] huge = new byte[CsrValidator.MAX_REQUEST_BYTES + 1];
        assertThatThrownBy(() -> ca.sign(huge, null, "node-1")).isInstanceOf(RequestTooLargeException.class)
                .hasMessage("the certificate request is 8193 bytes; at most 8192 are accepted")
                .extracting(e -> ((SigningRefusedException) e).reason())
                .isEqualTo(SigningRefusedException.Reason.TOO_LARGE);
        String longPath = "/x".repeat(1000);
        byte[] bigButValidShape = Csrs.csr(Csrs.ec("secp256r1"),
                List.of(cart.toString(), "spiffe://cluster.local" + longPath, "spiffe://cluster.local" + longPath,
                        "spiffe://cluster.local" + longPath, "spiffe://cluster.local" + longPath));
        assertThat(bigButValidShape.length).isGreaterThan(CsrValidator.MAX_REQUEST_BYTES);
        assertThatThrownBy(() -> ca.sign(bigButValidShape, null, "node-1"))
                .isInstanceOf(RequestTooLargeException.class);
    }

    @Test
    void rotationAddsSwitchesAndRetiresRoots() throws Exception {
        X509Certificate oldRoot = ca.signingCertificate();
        X509Certificate newRoot = ca.addRoot();
        assertThat(ca.bundle().roots()).containsExactly(oldRoot, newRoot);
        assertThat(ca.signingCertificate()).isEqualTo(oldRoot);
        assertThat(newRoot.getSubjectX500Principal()).isNotEqualTo(oldRoot.getSubjectX500Principal());
        assertThatThrownBy(() -> ca.retireRoot(newRoot)).hasMessageContaining("still in use");
        assertThatThrownBy(() -> ca.retireRoot(oldRoot)).hasMessageContaining("still in use");

        ca.switchSigning(newRoot);
        ca.sign(CertificateRequest.generate(cart).der(), null, "node-1").get(0).verify(newRoot.getPublicKey());
        ca.retireRoot(oldRoot);
        assertThat(ca.bundle().roots()).containsExactly(newRoot);
        assertThatThrownBy(() -> ca.switchSigning(oldRoot)).hasMessageContaining("is not the root added by addRoot()");
    }
}
