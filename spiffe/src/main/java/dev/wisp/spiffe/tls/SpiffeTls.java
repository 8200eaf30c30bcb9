package dev.wisp.spiffe.tls;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.internal.X509;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * Netty {@link SslContext}s for mutual TLS with X.509-SVIDs, as HBONE uses them: TLS 1.3 only,
 * ALPN {@code h2}, the AES-GCM suites, client certificates required, hostname verification off
 * (the SPIFFE ID in the URI SAN is what is verified).
 *
 * <p>The SVID and the bundle come from suppliers read at every handshake, so renewal and root
 * rotation apply to new connections without rebuilding the context. Each rejected peer produces one
 * line on logger {@code dev.wisp.spiffe.tls.SpiffeTls} saying why: WARN for a server a client
 * refused, DEBUG for a client a server refused (any client can cause that as often as it likes; the
 * server's handshake fails with a {@link PeerRejectedException} cause that says why, for the caller
 * to record at its own rate).
 *
 * <p>ALPN offers {@code h2} only, with Netty's NO_ADVERTISE behaviour: BoringSSL cannot send the
 * {@code no_application_protocol} alert (Netty refuses FATAL_ALERT for it), so a server completes
 * the handshake without ALPN when the client offers no {@code h2}; callers refuse such connections.
 *
 * <p>Works with {@link SslProvider#OPENSSL} (BoringSSL through netty-tcnative) and
 * {@link SslProvider#JDK}.
 */
public final class SpiffeTls {
    static final List<String> CIPHERS = List.of("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256");
    private static final ApplicationProtocolConfig ALPN_H2 = new ApplicationProtocolConfig(
            ApplicationProtocolConfig.Protocol.ALPN, ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
            ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, ApplicationProtocolNames.HTTP_2);

    private SpiffeTls() {}

    /**
     * A server context: presents {@code svid}, requires a client SVID of the bundle's trust domain that
     * chains to the bundle. Which client identity may do what is for authorization to decide.
     */
    public static SslContext forServer(Supplier<X509Svid> svid, Supplier<TrustBundle> bundle, SslProvider provider)
            throws SSLException {
        return forServer(svid, bundle, provider, Clock.systemUTC());
    }

    /** {@link #forServer(Supplier, Supplier, SslProvider)} with the clock that decides expiry. */
    public static SslContext forServer(Supplier<X509Svid> svid, Supplier<TrustBundle> bundle, SslProvider provider,
            Clock clock) throws SSLException {
        return common(SslContextBuilder.forServer(new SvidKeyManager(svid)), provider)
                .trustManager(new SpiffeTrustManager(bundle, Set.of(), clock, true)).clientAuth(ClientAuth.REQUIRE)
                .build();
    }

    /**
     * A client context: presents {@code svid}, and accepts only a server whose SVID chains to the
     * bundle and whose single URI SAN is one of {@code expectedServerIds}.
     */
    public static SslContext forClient(Supplier<X509Svid> svid, Supplier<TrustBundle> bundle,
            Set<SpiffeId> expectedServerIds, SslProvider provider) throws SSLException {
        return forClient(svid, bundle, expectedServerIds, provider, Clock.systemUTC());
    }

    /** {@link #forClient(Supplier, Supplier, Set, SslProvider)} with the clock that decides expiry. */
    public static SslContext forClient(Supplier<X509Svid> svid, Supplier<TrustBundle> bundle,
            Set<SpiffeId> expectedServerIds, SslProvider provider, Clock clock) throws SSLException {
        return client(SslContextBuilder.forClient().keyManager(new SvidKeyManager(svid)), bundle, expectedServerIds,
                provider, clock);
    }

    /**
     * A server context that presents {@code svid} and asks for no client certificate: for a port
     * whose clients authenticate inside the protected channel instead (the control plane's gRPC
     * port, where node agents send a bearer credential).
     */
    public static SslContext forServerAuthenticationOnly(Supplier<X509Svid> svid, SslProvider provider)
            throws SSLException {
        return common(SslContextBuilder.forServer(new SvidKeyManager(svid)), provider).clientAuth(ClientAuth.NONE)
                .build();
    }

    /**
     * A client context that presents no certificate and accepts only a server whose SVID chains to
     * the bundle and whose single URI SAN is one of {@code expectedServerIds}: how a node agent that
     * has no SVID yet reaches the control plane.
     */
    public static SslContext forClientWithoutCertificate(Supplier<TrustBundle> bundle,
            Set<SpiffeId> expectedServerIds, SslProvider provider) throws SSLException {
        return client(SslContextBuilder.forClient(), bundle, expectedServerIds, provider, Clock.systemUTC());
    }

    /** A client that accepts only a server whose SVID chains to the bundle and names one of {@code expected}. */
    private static SslContext client(SslContextBuilder builder, Supplier<TrustBundle> bundle, Set<SpiffeId> expected,
            SslProvider provider, Clock clock) throws SSLException {
        if (requireNonNull(expected, "expectedServerIds").isEmpty()) {
            throw new IllegalArgumentException("a client must expect at least one server identity");
        }
        return common(builder, provider).trustManager(new SpiffeTrustManager(bundle, expected, clock, false))
                // Netty 4.2 verifies host names by default; SPIFFE verifies the URI SAN instead.
                .endpointIdentificationAlgorithm(null).build();
    }

    /**
     * The key manager the contexts above present {@code svid} with (read at every handshake), for a
     * TLS stack that builds its own contexts: QUIC's, where TLS runs inside the transport.
     */
    public static X509ExtendedKeyManager keyManager(Supplier<X509Svid> svid) {
        return new SvidKeyManager(requireNonNull(svid, "svid"));
    }

    /**
     * The trust manager of the contexts above, for a TLS stack that builds its own contexts (QUIC's):
     * for a server ({@code expectedServerIds} empty) it accepts any client SVID of the bundle; for a
     * client only a server whose single URI SAN is one of {@code expectedServerIds}.
     */
    public static X509ExtendedTrustManager trustManager(Supplier<TrustBundle> bundle, Set<SpiffeId> expectedServerIds) {
        requireNonNull(bundle, "bundle");
        return new SpiffeTrustManager(bundle, Set.copyOf(expectedServerIds), Clock.systemUTC(),
                expectedServerIds.isEmpty());
    }

    private static SslContextBuilder common(SslContextBuilder builder, SslProvider provider) {
        return builder.sslProvider(requireNonNull(provider, "provider")).protocols("TLSv1.3").ciphers(CIPHERS)
                .applicationProtocolConfig(ALPN_H2);
    }

    /**
     * The SPIFFE ID of the verified peer of {@code session}: the single URI SAN of its leaf.
     *
     * @throws SSLPeerUnverifiedException if the peer presented no certificate or no single SPIFFE ID
     */
    public static SpiffeId peerId(SSLSession session) throws SSLPeerUnverifiedException {
        requireNonNull(session, "session");
        Certificate[] certs = session.getPeerCertificates();
        if (certs.length == 0 || !(certs[0] instanceof X509Certificate leaf)) {
            throw new SSLPeerUnverifiedException("the peer presented no X.509 certificate");
        }
        List<String> uris = X509.uriSans(leaf);
        if (uris.size() != 1) {
            throw new SSLPeerUnverifiedException("the peer's certificate has " + uris.size() + " URI SANs");
        }
        try {
            return SpiffeId.parse(uris.get(0));
        } catch (IllegalArgumentException e) {
            throw new SSLPeerUnverifiedException("the peer's URI SAN is not a SPIFFE ID: " + e.getMessage());
        }
    }
}
