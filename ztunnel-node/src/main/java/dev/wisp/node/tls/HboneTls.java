package dev.wisp.node.tls;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.identity.IdentityException;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.identity.Svid;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * TLS for HBONE as ztunnel configures it: TLS 1.3 only, AES-256-GCM-SHA384 and AES-128-GCM-SHA256,
 * ALPN {@code h2}, mutual authentication with X.509-SVIDs, no SNI, no session resumption, BoringSSL
 * (netty-tcnative) as the provider. Contexts are built per SVID and cached until the SVID is
 * renewed; building one is the expensive part, a handshake is not.
 */
public final class HboneTls {
    private static final List<String> CIPHERS = List.of("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256");
    private static final ApplicationProtocolConfig ALPN = new ApplicationProtocolConfig(
            ApplicationProtocolConfig.Protocol.ALPN, ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
            ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, ApplicationProtocolNames.HTTP_2);
    private final IdentityProvider identities;
    /** SVID (by identity) → its contexts; entries replaced when the SVID changes. Thread-safe. */
    private final Map<String, Contexts> contexts = new ConcurrentHashMap<>();

    private record Contexts(Svid svid, SslContext server, SslContext client) {}

    public HboneTls(IdentityProvider identities) {
        this.identities = requireNonNull(identities, "identities");
        if (!OpenSsl.isAvailable()) {
            throw new IllegalStateException("BoringSSL (netty-tcnative) is not loadable on this machine: "
                    + OpenSsl.unavailabilityCause());
        }
    }

    public IdentityProvider identities() {
        return identities;
    }

    /** The server context presenting {@code spiffeId}'s SVID and requiring a client SVID. */
    public SslContext server(String spiffeId) throws IdentityException {
        return contexts(spiffeId).server();
    }

    /** The client context presenting {@code spiffeId}'s SVID. */
    public SslContext client(String spiffeId) throws IdentityException {
        return contexts(spiffeId).client();
    }

    private Contexts contexts(String spiffeId) throws IdentityException {
        Svid svid = identities.svid(spiffeId);
        Contexts c = contexts.get(spiffeId);
        if (c != null && c.svid() == svid) {
            return c;
        }
        try {
            X509Certificate[] chain = svid.chain().toArray(X509Certificate[]::new);
            SpiffeTrustManager trust = new SpiffeTrustManager(identities.trustAnchors(), identities.trustDomain());
            SslContext server = SslContextBuilder.forServer(svid.key(), chain).sslProvider(SslProvider.OPENSSL)
                    .protocols("TLSv1.3").ciphers(CIPHERS).applicationProtocolConfig(ALPN)
                    .clientAuth(ClientAuth.REQUIRE).trustManager(trust).build();
            server.sessionContext().setSessionCacheSize(1);
            SslContext client = SslContextBuilder.forClient().keyManager(svid.key(), chain)
                    .sslProvider(SslProvider.OPENSSL).protocols("TLSv1.3").ciphers(CIPHERS)
                    .applicationProtocolConfig(ALPN).trustManager(trust).endpointIdentificationAlgorithm(null)
                    .build();
            c = new Contexts(svid, server, client);
            contexts.put(spiffeId, c);
            return c;
        } catch (SSLException e) {
            throw new IdentityException("cannot build TLS contexts for " + spiffeId, e);
        }
    }

    /** The SPIFFE ID of the peer of an established session, if its leaf has one. */
    public static Optional<String> peerId(SSLSession session) {
        try {
            Certificate[] certs = session.getPeerCertificates();
            return certs.length > 0 && certs[0] instanceof X509Certificate x
                    ? SpiffeTrustManager.spiffeId(x)
                    : Optional.empty();
        } catch (SSLPeerUnverifiedException e) {
            return Optional.empty();
        }
    }
}
