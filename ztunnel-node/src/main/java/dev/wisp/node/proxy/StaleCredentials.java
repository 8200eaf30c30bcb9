package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.tls.PeerChain;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;
import java.time.Instant;
import java.util.Optional;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The first handler of every stream the HBONE servers accept (HTTP/2 and HTTP/3, the agent's and the
 * waypoint's): before the stream's own handler sees its first frame, checks that the client
 * certificate chain its connection was verified with still holds ({@link PeerChain}: nothing of it
 * expired, still a path to a root of the current trust bundle). A TLS connection is authenticated
 * once, at its handshake, so without this a client could keep a connection made before its
 * certificate expired or before a root was retired and open streams on it for as long as it likes.
 *
 * <p>A stream on a stale connection is refused — HBONE 421 ({@link Outcome.StaleCertificate}), one
 * refused-flow record and access-log line naming why, {@code wisp_hbone_server_stale_certificate_streams_total}
 * — and the connection is told to go away ({@code goAway}: HTTP/2 or HTTP/3 GOAWAY, sent ahead of the
 * 421), so an honest client opens a new connection with its renewed certificate (the agent's
 * {@link Outbound} retries a 421 once, on a new connection). Streams already open on it are
 * not cut. A fresh connection is checked at its first stream and then costs a comparison per stream.
 *
 * <p>Stream's event loop only; the cached {@link PeerChain} is the connection's.
 */
final class StaleCredentials extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(StaleCredentials.class);
    private static final AttributeKey<PeerChain> CHAIN = AttributeKey.valueOf("wisp.hbone.peerChain");
    static final String COUNTER = "wisp_hbone_server_stale_certificate_streams";
    private final ProxyContext ctx;
    private final StreamProtocol protocol;
    private final Consumer<Channel> goAway;

    /**
     * @param goAway stops new streams on a stream's connection and closes it once its open streams end
     */
    StaleCredentials(ProxyContext ctx, StreamProtocol protocol, Consumer<Channel> goAway) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.protocol = requireNonNull(protocol, "protocol");
        this.goAway = requireNonNull(goAway, "goAway");
    }

    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
        Optional<String> stale = stale(c.channel());
        if (stale.isEmpty()) {
            c.pipeline().remove(this);
            c.fireChannelRead(msg);
            return;
        }
        ReferenceCountUtil.release(msg);
        ctx.telemetry().counter(COUNTER, "HBONE streams refused (421) because the client certificate chain of their "
                + "connection expired or no longer chains to the trust bundle; the connection is then sent GOAWAY")
                .increment();
        Channel conn = c.channel().parent();
        LOG.debug("HBONE {} connection from {}: {}; refusing its new streams", protocol.label(),
                protocol.remote(c.channel()), stale.get());
        // GOAWAY first: a client reads it before the 421, so its retry goes to a new connection.
        goAway.accept(conn);
        InboundStream.refused(ctx, protocol, c, new Outcome.StaleCertificate(stale.get()));
    }

    private Optional<String> stale(Channel stream) {
        Channel conn = stream.parent();
        PeerChain chain = conn.attr(CHAIN).get();
        if (chain == null) {
            Optional<PeerChain> of = protocol.session(stream).flatMap(PeerChain::of);
            if (of.isEmpty()) {
                return Optional.empty(); // no TLS below (the fuzz harness): nothing was verified to go stale
            }
            chain = of.get();
            conn.attr(CHAIN).set(chain);
        }
        return chain.stale(ctx.tls().identities().bundle(), Instant.now());
    }
}
