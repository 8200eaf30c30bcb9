package dev.wisp.node.tls;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.identity.IdentityException;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.tls.SpiffeTls;
import io.netty.handler.codec.http3.Http3;
import io.netty.handler.codec.quic.QuicSslContext;
import io.netty.handler.codec.quic.QuicSslContextBuilder;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Collection;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * TLS for HBONE: the spiffe module's {@link SpiffeTls} contexts (TLS 1.3 only, AES-GCM suites,
 * ALPN {@code h2}, mutual X.509-SVID authentication, no hostname verification) on BoringSSL
 * (netty-tcnative). A server context per presented identity; a client context per (presented
 * identity, accepted server identities) — the pool key's identities. Contexts read the current SVID
 * and bundle at every handshake, so renewals need no rebuild; contexts are cached for the agent's
 * life (a handful per node). The QUIC contexts (HBONE over HTTP/3) use the same key and trust
 * managers, so both protocols accept and present exactly the same identities.
 */
public final class HboneTls {
    private final IdentityProvider identities;
    /** Thread-safe caches; values immutable. */
    private final Map<SpiffeId, SslContext> servers = new ConcurrentHashMap<>();
    private final Map<ClientKey, SslContext> clients = new ConcurrentHashMap<>();
    private final Map<ClientKey, QuicSslContext> quicClients = new ConcurrentHashMap<>();

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

    /** The server context presenting {@code id}'s SVID and requiring a client SVID. */
    public SslContext server(SpiffeId id) throws IdentityException {
        identities.svid(id);
        try {
            return servers.computeIfAbsent(id, k -> {
                try {
                    return SpiffeTls.forServer(svid(id), identities::bundle, SslProvider.OPENSSL);
                } catch (SSLException e) {
                    throw new IllegalStateException(e);
                }
            });
        } catch (IllegalStateException e) {
            throw new IdentityException("cannot build the HBONE server TLS context for " + id, e.getCause());
        }
    }

    /** The client context presenting {@code id}'s SVID and accepting any of {@code acceptedServers}. */
    public SslContext client(SpiffeId id, Collection<SpiffeId> acceptedServers) throws IdentityException {
        identities.svid(id);
        Set<SpiffeId> expected = Set.copyOf(acceptedServers);
        try {
            return clients.computeIfAbsent(new ClientKey(id, expected), k -> {
                try {
                    return SpiffeTls.forClient(svid(id), identities::bundle, expected, SslProvider.OPENSSL);
                } catch (SSLException e) {
                    throw new IllegalStateException(e);
                }
            });
        } catch (IllegalStateException e) {
            throw new IdentityException("cannot build the HBONE client TLS context for " + id, e.getCause());
        }
    }

    /**
     * The QUIC server context: HBONE over HTTP/3. The same key and trust managers as {@link #server}
     * (TLS 1.3 is QUIC's own), ALPN {@code h3}, client SVID required. The SVID presented is
     * {@code id}'s, asked at each handshake: one QUIC server socket serves every connection with one
     * context, so the choice is the key manager's. A handshake whose identity has no SVID fails (as
     * {@link #server} refuses one).
     */
    public QuicSslContext quicServer(Supplier<SpiffeId> id) {
        requireNonNull(id, "id");
        Supplier<X509Svid> svid = () -> svid(id.get()).get();
        return QuicSslContextBuilder.forServer(SpiffeTls.keyManager(svid), null)
                .trustManager(SpiffeTls.trustManager(identities::bundle, Set.of())).clientAuth(ClientAuth.REQUIRE)
                .applicationProtocols(Http3.supportedApplicationProtocols()).build();
    }

    /** The QUIC client context presenting {@code id}'s SVID and accepting any of {@code acceptedServers}. */
    public QuicSslContext quicClient(SpiffeId id, Collection<SpiffeId> acceptedServers) throws IdentityException {
        identities.svid(id);
        Set<SpiffeId> expected = Set.copyOf(acceptedServers);
        if (expected.isEmpty()) {
            throw new IllegalArgumentException("a client must expect at least one server identity");
        }
        return quicClients.computeIfAbsent(new ClientKey(id, expected), k -> QuicSslContextBuilder.forClient()
                .keyManager(SpiffeTls.keyManager(svid(id)), null)
                .trustManager(SpiffeTls.trustManager(identities::bundle, expected))
                .applicationProtocols(Http3.supportedApplicationProtocols()).build());
    }

    /** A client context's cache key: the presented identity and the accepted set. */
    private record ClientKey(SpiffeId presented, Set<SpiffeId> accepted) {}

    /** Reads the current SVID at each handshake; {@link #server}/{@link #client} made sure one exists. */
    private Supplier<X509Svid> svid(SpiffeId id) {
        return () -> {
            try {
                return identities.svid(id);
            } catch (IdentityException e) {
                throw new IllegalStateException(e.getMessage(), e);
            }
        };
    }

    /**
     * When the first of the two leaf certificates an established session was verified with expires
     * (ours as presented, the peer's as checked); empty when the session shows neither.
     */
    public static Optional<Instant> certificatesExpire(SSLSession session) {
        Instant first = null;
        Certificate[] peer;
        try {
            peer = session.getPeerCertificates();
        } catch (SSLPeerUnverifiedException e) {
            peer = null;
        }
        for (Certificate[] chain : new Certificate[][]{session.getLocalCertificates(), peer}) {
            if (chain != null && chain.length > 0 && chain[0] instanceof X509Certificate leaf) {
                Instant end = leaf.getNotAfter().toInstant();
                first = first == null || end.isBefore(first) ? end : first;
            }
        }
        return Optional.ofNullable(first);
    }

    /** The SPIFFE ID of the verified peer of an established session, read from its certificate. */
    public static Optional<SpiffeId> peerId(SSLSession session) {
        try {
            return Optional.of(SpiffeTls.peerId(session));
        } catch (SSLPeerUnverifiedException e) {
            return Optional.empty();
        }
    }
}
