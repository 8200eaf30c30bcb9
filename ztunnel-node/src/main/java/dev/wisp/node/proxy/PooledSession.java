package dev.wisp.node.proxy;

import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import io.netty.channel.Channel;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLSession;

/**
 * What both HBONE pools ({@link HbonePool} over TLS, {@link QuicHbonePool} over QUIC) do with a
 * client session once its handshake is done: accept the server only when its verified SPIFFE ID is
 * one of the pool key's, and stop new streams on the connection when the first certificate the
 * session was verified with expires.
 */
final class PooledSession {
    private PooledSession() {}

    /**
     * The refusal when the verified server of {@code session} is not one of {@code key}'s destination
     * identities (or shows none); empty when it is one.
     *
     * @param over how the connection runs, for the reason ({@code ""} or {@code " over QUIC"})
     */
    static Optional<Outcome.PeerIdentity> wrongServer(PoolKey key, SSLSession session, String over) {
        Optional<SpiffeId> server = HboneTls.peerId(session);
        if (server.isPresent() && key.destinationIdentities().contains(server.get())) {
            return Optional.empty();
        }
        return Optional.of(new Outcome.PeerIdentity("HBONE server " + key.destination() + " presented "
                + server.map(SpiffeId::toString).orElse("no SPIFFE ID") + over + ", expected one of "
                + key.destinationIdentities()));
    }

    /**
     * Runs {@code expired} on {@code conn}'s event loop when the first of the certificates
     * {@code session} was verified with expires (at once if one already has); the timer goes with the
     * connection's close.
     */
    static void onCertificateExpiry(SSLSession session, Channel conn, Runnable expired) {
        HboneTls.certificatesExpire(session).ifPresent(end -> {
            var timer = conn.eventLoop().schedule(expired,
                    Math.max(0, Duration.between(Instant.now(), end).toMillis()), TimeUnit.MILLISECONDS);
            conn.closeFuture().addListener(x -> timer.cancel(false));
        });
    }
}
