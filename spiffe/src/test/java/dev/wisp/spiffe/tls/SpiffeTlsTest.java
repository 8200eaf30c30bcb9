package dev.wisp.spiffe.tls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.testing.AlwaysPresent;
import dev.wisp.testing.LogCapture;
import dev.wisp.spiffe.testing.Loopback;
import dev.wisp.spiffe.testing.TestCerts;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Real TLS 1.3 handshakes over loopback between Netty endpoints, with BoringSSL (tcnative) and the
 * JDK provider: issued SVIDs connect; each kind of bad certificate is refused with a log line that
 * names the reason.
 */
class SpiffeTlsTest {
    static final String TD = "cluster.local";
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount(TD, "shop", "cart");
    static final SpiffeId SERVER = SpiffeId.forServiceAccount(TD, "shop", "payments");
    static final CertificateAuthority CA = CertificateAuthority
            .inMemory(CaSettings.of(TD, NodeAuthorizer.unrestricted()));
    static Loopback loopback;

    @BeforeAll
    static void start() {
        assertThat(OpenSsl.isAvailable()).as("netty-tcnative BoringSSL loads: %s", OpenSsl.unavailabilityCause())
                .isTrue();
        loopback = new Loopback();
    }

    @AfterAll
    static void stop() {
        loopback.close();
    }

    /** A second root of the trust domain, whose key tests use to sign what the CA never would. */
    static final TestCerts.Issuer TEST_ROOT = TestCerts.rootCa("test root", Instant.now().minusSeconds(600),
            Instant.now().plus(Duration.ofDays(1)));
    static final TrustBundle BUNDLE = CA.bundle().withRoot(TEST_ROOT.cert());

    static SslContext server(X509Svid svid, SslProvider provider) throws Exception {
        return SpiffeTls.forServer(() -> svid, () -> BUNDLE, provider);
    }

    static SslContext client(X509Svid svid, Set<SpiffeId> expected, SslProvider provider) throws Exception {
        return SpiffeTls.forClient(() -> svid, () -> BUNDLE, expected, provider);
    }

    /** A peer that does no SPIFFE checks of its own and presents whatever certificate it is given. */
    static SslContext rogueServer(TestCerts.Issuer cred, SslProvider provider) throws Exception {
        return SslContextBuilder.forServer(new AlwaysPresent(cred.cert(), cred.key())).sslProvider(provider)
                .protocols("TLSv1.3")
                .trustManager(InsecureTrustManagerFactory.INSTANCE)
                .clientAuth(io.netty.handler.ssl.ClientAuth.REQUIRE).build();
    }

    static SslContext rogueClient(TestCerts.Issuer cred, SslProvider provider) throws Exception {
        return SslContextBuilder.forClient().keyManager(new AlwaysPresent(cred.cert(), cred.key()))
                .sslProvider(provider)
                .protocols("TLSv1.3").trustManager(InsecureTrustManagerFactory.INSTANCE)
                .endpointIdentificationAlgorithm(null).build();
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void issuedSvidsCompleteTls13WithAlpnH2AndSeeEachOthersIds(SslProvider provider) throws Exception {
        Loopback.Outcome o = loopback.handshake(server(CA.issue(SERVER, null, "n"), provider),
                client(CA.issue(CLIENT, null, "n"), Set.of(SERVER), provider));
        assertThat(o.bothOk()).as("%s", o).isTrue();
        assertThat(o.server().peer()).isEqualTo(CLIENT);
        assertThat(o.client().peer()).isEqualTo(SERVER);
        assertThat(o.client().protocol()).isEqualTo("TLSv1.3");
        assertThat(o.client().alpn()).isEqualTo("h2");
        assertThat(o.server().alpn()).isEqualTo("h2");
    }

    @Test
    void providersInteroperate() throws Exception {
        Loopback.Outcome o = loopback.handshake(server(CA.issue(SERVER, null, "n"), SslProvider.OPENSSL),
                client(CA.issue(CLIENT, null, "n"), Set.of(SERVER), SslProvider.JDK));
        assertThat(o.bothOk()).as("%s", o).isTrue();
        o = loopback.handshake(server(CA.issue(SERVER, null, "n"), SslProvider.JDK),
                client(CA.issue(CLIENT, null, "n"), Set.of(SERVER), SslProvider.OPENSSL));
        assertThat(o.bothOk()).as("%s", o).isTrue();
    }

    /** The {@link PeerRejectedException} among the causes of a failed handshake. */
    static PeerRejectedException rejection(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof PeerRejectedException e) {
                return e;
            }
        }
        throw new AssertionError("no PeerRejectedException among the causes", failure);
    }

    /**
     * The server must refuse a client presenting {@code bad} for {@code kind}, with {@code reason} in
     * the handshake's cause (what the agent records) and in one log line.
     */
    PeerRejectedException serverRefuses(SslProvider provider, TestCerts.Issuer bad, PeerRejectedException.Kind kind,
            String reason) throws Exception {
        try (LogCapture log = new LogCapture(SpiffeTls.class)) {
            Loopback.Outcome o = loopback.handshake(server(CA.issue(SERVER, null, "n"), provider),
                    rogueClient(bad, provider));
            assertThat(o.server().ok()).as("%s", o).isFalse();
            PeerRejectedException why = rejection(o.server().cause());
            assertThat(why.kind()).isEqualTo(kind);
            assertThat(why.getMessage()).contains(reason);
            assertThat(log.lines()).singleElement().asString()
                    .startsWith("TLS server rejected the client's certificate: ").contains(reason);
            return why;
        }
    }

    /** The client must refuse a server presenting {@code bad}, logging {@code reason}. */
    void clientRefuses(SslProvider provider, TestCerts.Issuer bad, Set<SpiffeId> expected,
            PeerRejectedException.Kind kind, String reason) throws Exception {
        try (LogCapture log = new LogCapture(SpiffeTls.class)) {
            Loopback.Outcome o = loopback.handshake(rogueServer(bad, provider),
                    client(CA.issue(CLIENT, null, "n"), expected, provider));
            assertThat(o.client().ok()).as("%s", o).isFalse();
            assertThat(rejection(o.client().cause()).kind()).isEqualTo(kind);
            assertThat(log.lines()).singleElement().asString()
                    .startsWith("TLS client rejected the server's certificate: ").contains(reason);
        }
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void refusesAnExpiredCertificate(SslProvider provider) throws Exception {
        Instant now = Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        TestCerts.Issuer expired = TestCerts.leaf(TEST_ROOT, List.of(CLIENT.toString()), false,
                now.minus(Duration.ofHours(2)), now.minus(Duration.ofHours(1)));
        serverRefuses(provider, expired, PeerRejectedException.Kind.NOT_VALID_NOW,
                "the certificate of spiffe://cluster.local/ns/shop/sa/cart expired at "
                        + now.minus(Duration.ofHours(1)));
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void refusesACertificateFromAnotherTrustDomain(SslProvider provider) throws Exception {
        CertificateAuthority other = CertificateAuthority
                .inMemory(CaSettings.of("other.org", NodeAuthorizer.unrestricted()));
        X509Svid foreign = other.issue(SpiffeId.forServiceAccount("other.org", "shop", "cart"), null, "n");
        PeerRejectedException why = serverRefuses(provider, new TestCerts.Issuer(foreign.leaf(),
                foreign.privateKey()), PeerRejectedException.Kind.UNTRUSTED_ISSUER,
                "the peer spiffe://other.org/ns/shop/sa/cart is in trust domain other.org, expected cluster.local");
        assertThat(why.claimedId()).contains(foreign.id());
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void refusesACertificateOfAnotherCaOfTheSameTrustDomainNamingBothSides(SslProvider provider) throws Exception {
        CertificateAuthority impostor = CertificateAuthority.inMemory(CaSettings.of(TD, NodeAuthorizer.unrestricted()));
        X509Svid forged = impostor.issue(CLIENT, null, "n");
        PeerRejectedException why = serverRefuses(provider, new TestCerts.Issuer(forged.leaf(), forged.privateKey()),
                PeerRejectedException.Kind.UNTRUSTED_ISSUER, "the certificate of " + CLIENT
                        + " does not chain to the trust bundle of " + TD);
        // What was refused and what was trusted, by serial: a refusal of a good-looking chain can be read.
        assertThat(why.getMessage()).contains("[chain [" + forged.leaf().getSerialNumber().toString(16) + " issued by "
                + forged.leaf().getIssuerX500Principal().getName()).contains("; bundle roots ["
                        + CA.bundle().roots()
                                .get(0).getSerialNumber().toString(16)
                        + " issued by ")
                .contains(TEST_ROOT.cert()
                        .getSerialNumber().toString(16));
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void refusesASelfSignedLeaf(SslProvider provider) throws Exception {
        Instant now = Instant.now();
        TestCerts.Issuer self = TestCerts.leaf(null, List.of(SERVER.toString()), false, now.minusSeconds(60),
                now.plusSeconds(3600));
        clientRefuses(provider, self, Set.of(SERVER), PeerRejectedException.Kind.UNTRUSTED_ISSUER,
                "the leaf certificate of spiffe://cluster.local/ns/shop/sa/payments is self-signed");
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void refusesAnUnexpectedServerIdentity(SslProvider provider) throws Exception {
        X509Svid impostor = CA.issue(SpiffeId.forServiceAccount(TD, "shop", "impostor"), null, "n");
        clientRefuses(provider, new TestCerts.Issuer(impostor.leaf(), impostor.privateKey()), Set.of(SERVER),
                PeerRejectedException.Kind.UNEXPECTED_IDENTITY,
                "the server identity spiffe://cluster.local/ns/shop/sa/impostor is not one of the expected "
                        + "[spiffe://cluster.local/ns/shop/sa/payments]");
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void refusesALeafWithTwoUriSans(SslProvider provider) throws Exception {
        serverRefuses(provider, caSigned(List.of(CLIENT.toString(), SERVER.toString()), false),
                PeerRejectedException.Kind.NOT_AN_SVID, "the leaf certificate has 2 URI SANs");
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void refusesALeafThatIsACa(SslProvider provider) throws Exception {
        clientRefuses(provider, caSigned(List.of(SERVER.toString()), true), Set.of(SERVER),
                PeerRejectedException.Kind.NOT_AN_SVID, "is a CA certificate (basicConstraints CA:true)");
    }

    /**
     * What BoringSSL (netty-tcnative) does when a client's ALPN list lacks {@code h2}, recorded so that
     * a provider upgrade that changes it fails here: Netty's OpenSSL provider accepts only the
     * NO_ADVERTISE and CHOOSE_MY_LAST_PROTOCOL selector behaviours (FATAL_ALERT is refused when the
     * context is built), and with NO_ADVERTISE the server leaves ALPN out of its answer and completes
     * the handshake. No {@code no_application_protocol} alert: the agent's HBONE server therefore
     * reads the ClientHello itself and sends that alert before the provider sees it.
     */
    @Test
    void boringSslCompletesTheHandshakeWithoutAlpnWhenTheClientOffersNoH2() throws Exception {
        X509Svid cert = CA.issue(CLIENT, null, "n");
        SslContext http11 = SslContextBuilder.forClient().keyManager(cert.privateKey(), cert.chain())
                .sslProvider(SslProvider.JDK).protocols("TLSv1.3").trustManager(InsecureTrustManagerFactory.INSTANCE)
                .endpointIdentificationAlgorithm(null).applicationProtocolConfig(alpn(
                        ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE, "http/1.1"))
                .build();
        Loopback.Outcome o = loopback.handshake(server(CA.issue(SERVER, null, "n"), SslProvider.OPENSSL), http11);
        assertThat(o.bothOk()).as("%s", o).isTrue();
        assertThat(o.server().alpn()).isNull();
        assertThat(o.client().alpn()).isNull();

        X509Svid svid = CA.issue(SERVER, null, "n");
        SslContextBuilder fatal = SslContextBuilder.forServer(svid.privateKey(), svid.chain())
                .sslProvider(SslProvider.OPENSSL)
                .applicationProtocolConfig(alpn(ApplicationProtocolConfig.SelectorFailureBehavior.FATAL_ALERT, "h2"));
        assertThatThrownBy(fatal::build).isInstanceOf(UnsupportedOperationException.class)
                .hasMessageContaining("FATAL_ALERT");
    }

    private static ApplicationProtocolConfig alpn(ApplicationProtocolConfig.SelectorFailureBehavior onNoMatch,
            String protocol) {
        return new ApplicationProtocolConfig(ApplicationProtocolConfig.Protocol.ALPN, onNoMatch,
                ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, protocol);
    }

    /** A certificate signed by a trusted root but shaped as the CA would never issue. */
    private static TestCerts.Issuer caSigned(List<String> uris, boolean ca) {
        Instant now = Instant.now();
        return TestCerts.leaf(TEST_ROOT, uris, ca, now.minusSeconds(60), now.plusSeconds(3600));
    }

    @ParameterizedTest
    @EnumSource(value = SslProvider.class, names = {"OPENSSL", "JDK"})
    void everyConnectionVerifiesTheFullChainWithoutSessionResumption(SslProvider provider) throws Exception {
        java.util.concurrent.atomic.AtomicInteger clientVerifications = new java.util.concurrent.atomic.AtomicInteger();
        SslContext server = server(CA.issue(SERVER, null, "n"), provider);
        SslContext client = SpiffeTls.forClient(() -> CA.issue(CLIENT, null, "n"), () -> {
            clientVerifications.incrementAndGet();
            return BUNDLE;
        }, Set.of(SERVER), provider);
        Loopback.Outcome first = loopback.handshake(server, client);
        assertThat(first.bothOk()).as("%s", first).isTrue();
        int perHandshake = clientVerifications.get();
        assertThat(perHandshake).isPositive();
        for (int i = 2; i <= 4; i++) {
            Loopback.Outcome again = loopback.handshake(server, client);
            assertThat(again.bothOk()).as("%s", again).isTrue();
            assertThat(clientVerifications.get()).as("the server's chain is verified on connection %d", i)
                    .isEqualTo(i * perHandshake);
        }
    }

    @Test
    void svidAndBundleSuppliersApplyToNewHandshakesWithoutRebuilding() throws Exception {
        AtomicReference<X509Svid> serverSvid = new AtomicReference<>(CA.issue(SERVER, null, "n"));
        AtomicReference<TrustBundle> bundle = new AtomicReference<>(CA.bundle());
        SslContext server = SpiffeTls.forServer(serverSvid::get, bundle::get, SslProvider.OPENSSL);
        SslContext client = client(CA.issue(CLIENT, null, "n"), Set.of(SERVER), SslProvider.OPENSSL);
        assertThat(loopback.handshake(server, client).bothOk()).isTrue();

        CertificateAuthority other = CertificateAuthority.inMemory(CaSettings.of(TD, NodeAuthorizer.unrestricted()));
        bundle.set(other.bundle());
        assertThat(loopback.handshake(server, client).server().ok()).isFalse();
        bundle.set(CA.bundle());
        X509Svid renewed = CA.issue(SERVER, null, "n");
        serverSvid.set(renewed);
        Loopback.Outcome o = loopback.handshake(server, client);
        assertThat(o.bothOk()).isTrue();
    }
}
