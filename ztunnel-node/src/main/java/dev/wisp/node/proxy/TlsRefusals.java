package dev.wisp.node.proxy;

import dev.wisp.node.tls.ClientHello;
import dev.wisp.spiffe.tls.PeerRejectedException;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import java.nio.channels.ClosedChannelException;
import java.util.Optional;

/**
 * Why the HBONE server's TLS handshake with a client failed, as an {@link Outcome.Tls}: a pure
 * translation of what the handshake left behind — the typed {@link PeerRejectedException} of the
 * certificate check, what the client's ClientHello offered, and, for what only BoringSSL knows,
 * its error reason code.
 */
final class TlsRefusals {
    /**
     * BoringSSL's {@code SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE}, as netty-tcnative puts it in the
     * exception message: the one refusal that has no typed trace (the client's empty Certificate
     * message never reaches the trust manager).
     */
    static final String BORINGSSL_NO_CERTIFICATE = "PEER_DID_NOT_RETURN_A_CERTIFICATE";

    private TlsRefusals() {}

    /** The refusal for a failed handshake; {@code hello} is what the client offered, when it parsed. */
    static Outcome.Tls of(Throwable failure, Optional<ClientHello> hello) {
        Optional<PeerRejectedException> rejected = cause(failure, PeerRejectedException.class);
        if (rejected.isPresent()) {
            PeerRejectedException e = rejected.get();
            return new Outcome.Tls(e.kind() == PeerRejectedException.Kind.UNTRUSTED_ISSUER
                    ? Outcome.TlsRefusal.FOREIGN_CA
                    : Outcome.TlsRefusal.HANDSHAKE, "certificate rejected: " + e.getMessage());
        }
        if (hello.isPresent() && !hello.get().offersTls13()) {
            return new Outcome.Tls(Outcome.TlsRefusal.TLS_VERSION, "the client offered TLS 1.2 or older only");
        }
        if (String.valueOf(failure.getMessage()).contains(BORINGSSL_NO_CERTIFICATE)) {
            return new Outcome.Tls(Outcome.TlsRefusal.NO_CERTIFICATE, "the client sent no certificate");
        }
        if (cause(failure, SslHandshakeTimeoutException.class).isPresent()) {
            return new Outcome.Tls(Outcome.TlsRefusal.HANDSHAKE, "no complete handshake within the timeout");
        }
        if (cause(failure, ClosedChannelException.class).isPresent()) {
            return new Outcome.Tls(Outcome.TlsRefusal.HANDSHAKE, "the client closed before the handshake completed");
        }
        return new Outcome.Tls(Outcome.TlsRefusal.HANDSHAKE, String.valueOf(failure.getMessage()));
    }

    /** How the ALPN gate words what a refused client offered. */
    static String alpnOffered(ClientHello hello) {
        return hello.alpn().map(p -> "the client offered " + p).orElse("the client offered no ALPN");
    }

    private static <T extends Throwable> Optional<T> cause(Throwable t, Class<T> type) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (type.isInstance(c)) {
                return Optional.of(type.cast(c));
            }
        }
        return Optional.empty();
    }
}
