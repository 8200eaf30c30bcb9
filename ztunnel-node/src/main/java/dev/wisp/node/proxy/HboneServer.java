package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.identity.IdentityException;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.AlpnGate;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.ChannelGroupFuture;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ApplicationProtocolNegotiationHandler;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HBONE server (port 15008): TLS 1.3 with a required client SVID, ALPN {@code h2}, then one
 * {@link InboundStream} per HTTP/2 CONNECT stream.
 *
 * <p>The certificate presented is chosen per TCP connection before the handshake: the SVID of the
 * workload whose address the client dialled when that is a workload of this node (in-pod style),
 * otherwise the node agent's own identity ({@link IdentityProvider#nodeId}) — clients dial the
 * {@code Node}'s address and verify that identity for workloads of that node.
 *
 * <p>Refusals before any stream — a ClientHello without {@code h2} in its ALPN list (answered by
 * {@link AlpnGate} with the fatal {@code no_application_protocol} alert, since BoringSSL cannot send
 * it), a failed handshake ({@link TlsRefusals} names why: TLS 1.2, no certificate, a certificate
 * of another CA, which names the identity it claims), no certificate of this agent's own to
 * present — are each recorded once per connection with {@link Telemetry#refused}: one rate-limited
 * access-log line and one flow record from the peer's address.
 *
 * <p>Every stream first passes {@link StaleCredentials}: a stream on a connection whose client
 * certificate chain expired or lost its root since the handshake is refused (421) and the connection
 * is sent GOAWAY.
 *
 * <p>Drain: {@link #drain} stops accepting and closes every connection gracefully — Netty's
 * HTTP/2 handler sends GOAWAY and waits for open streams up to the drain deadline.
 */
public final class HboneServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(HboneServer.class);
    static final AttributeKey<Optional<SpiffeId>> PEER_ID = AttributeKey.valueOf("wisp.hbone.peerId");
    private static final AttributeKey<Boolean> REFUSED = AttributeKey.valueOf("wisp.hbone.refused");
    private final ProxyContext ctx;
    private final Duration drainTimeout;
    /** The SVID presented on a connection, by the address the client dialled. */
    private final Function<InetSocketAddress, SpiffeId> identity;
    /** A new handler for each CONNECT stream. */
    private final Supplier<ChannelHandler> streams;
    /** Every accepted TLS connection (thread-safe group); used for drain and the connection gauge. */
    private final ChannelGroup connections = new DefaultChannelGroup("hbone-server", GlobalEventExecutor.INSTANCE);
    private Channel listener;
    /** The agent's workloads' fair share, which inbound streams join ({@link InboundShare}); null: none. */
    private volatile FairShare fair;

    /** The node agent's server: workload or node identity, {@link InboundStream}s to local workloads. */
    public HboneServer(ProxyContext ctx, Duration drainTimeout) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.drainTimeout = requireNonNull(drainTimeout, "drainTimeout");
        this.identity = this::serverIdentity;
        this.streams = () -> new InboundStream(ctx, StreamProtocol.H2, fair);
        gauge();
    }

    /**
     * An HBONE server of another kind (the waypoint): the same TLS, ALPN gate, HTTP/2 settings,
     * refusal records and drain, presenting {@code identity} on every connection and handing each
     * stream to a new {@code streams} handler, which reads the CONNECT HEADERS first
     * ({@link #connectRefusal} and {@link #peerId} tell it what the agent's own server checks).
     */
    public HboneServer(ProxyContext ctx, Duration drainTimeout, SpiffeId identity, Supplier<ChannelHandler> streams) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.drainTimeout = requireNonNull(drainTimeout, "drainTimeout");
        requireNonNull(identity, "identity");
        this.identity = local -> identity;
        this.streams = requireNonNull(streams, "streams");
        gauge();
    }

    /**
     * Inbound streams from now on join {@code share} by their source workload ({@link InboundShare}):
     * the agent's one share for both directions, so its switch turns both on or off.
     */
    public void shareFairly(FairShare share) {
        this.fair = requireNonNull(share, "share");
    }

    private void gauge() {
        ctx.telemetry().gauge("wisp_hbone_server_connections", "TLS connections accepted on the HBONE port, open",
                connections::size);
    }

    /** Binds the listener; blocks until bound. */
    public InetSocketAddress bind(InetSocketAddress address) {
        listener = ctx.transport().listen(address, false, ch -> {
            connections.add(ch);
            SpiffeId identity = this.identity.apply((InetSocketAddress) ch.localAddress());
            try {
                SslHandler ssl = ctx.tls().server(identity).newHandler(ch.alloc());
                ssl.setHandshakeTimeoutMillis(10_000);
                ch.pipeline().addLast("client-hello", new AlpnGate(ApplicationProtocolNames.HTTP_2,
                        (c, hello) -> refuseTls(c, new Outcome.Tls(Outcome.TlsRefusal.NO_H2,
                                TlsRefusals.alpnOffered(hello)))))
                        .addLast("tls", ssl).addLast("alpn", new Alpn());
            } catch (IdentityException e) {
                refuseTls(ch, new Outcome.Tls(Outcome.TlsRefusal.HANDSHAKE,
                        "this agent has no certificate for " + identity + ": " + e.getMessage()));
                ch.close();
            }
        });
        return (InetSocketAddress) listener.localAddress();
    }

    /** Closes the listener, if bound, so that {@link #bind} may be called again (on another port). */
    public void unbind() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
            listener = null;
        }
    }

    private SpiffeId serverIdentity(InetSocketAddress local) {
        Optional<Workload> w = ctx.index().workloadByAddress(local.getAddress())
                .filter(x -> x.getNode().equals(ctx.nodeName()));
        String td = ctx.tls().identities().trustDomain();
        return w.map(IdentityProvider::workloadId).orElseGet(() -> IdentityProvider.nodeId(td, ctx.nodeName()));
    }

    /**
     * Records a TLS connection refused before any stream, once per connection (a refusal by the
     * ALPN gate also fails the handshake behind it): the access-log line (rate-limited) and the flow
     * record, from the peer's address to the address it dialled, with the identity this server
     * presents there.
     */
    private void refuseTls(Channel ch, Outcome.Tls outcome) {
        if (ch.attr(REFUSED).setIfAbsent(Boolean.TRUE) != null) {
            return;
        }
        InetSocketAddress local = (InetSocketAddress) ch.localAddress();
        ConnectionLabels labels = new ConnectionLabels("destination", Optional.empty(), Optional.empty(),
                Optional.empty(), Optional.of(identity.apply(local)), "", false, ConnectionLabels.H2);
        ctx.telemetry().refused("inbound", labels, ch.remoteAddress(), local, outcome);
    }

    /** TLS connections currently open. */
    public int connections() {
        return connections.size();
    }

    /** Stops accepting, then sends GOAWAY on every connection and lets streams finish until the deadline. */
    public void drain() {
        goAway().awaitUninterruptibly(drainTimeout.toMillis() + 1000);
    }

    /**
     * Stops accepting and sends GOAWAY on every connection; the future completes when they have all
     * closed (their last stream ended, or the drain timeout passed).
     */
    public ChannelGroupFuture goAway() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
        return connections.close();
    }

    @Override
    public void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
        connections.close().awaitUninterruptibly(1000);
    }

    /** After the handshake: HTTP/2 when ALPN chose {@code h2}; anything else is closed. */
    private final class Alpn extends ApplicationProtocolNegotiationHandler {
        Alpn() {
            super("no-alpn");
        }

        @Override
        protected void configurePipeline(ChannelHandlerContext c, String protocol) throws Exception {
            if (!ApplicationProtocolNames.HTTP_2.equals(protocol)) {
                // AlpnGate refuses such clients first; this stays for a provider that would not.
                refuseTls(c.channel(), new Outcome.Tls(Outcome.TlsRefusal.NO_H2, "negotiated '" + protocol + "'"));
                c.close();
                return;
            }
            SslHandler ssl = c.pipeline().get(SslHandler.class);
            c.channel().attr(PEER_ID).set(HboneTls.peerId(ssl.engine().getSession()));
            http2(c.channel(), ctx, drainTimeout, streams);
        }

        @Override
        protected void handshakeFailure(ChannelHandlerContext c, Throwable cause) {
            refuseTls(c.channel(), TlsRefusals.of(cause, Optional.ofNullable(c.channel().attr(AlpnGate.HELLO).get())));
            c.close();
        }
    }

    /**
     * Everything after TLS on an HBONE connection whose {@link #PEER_ID} is set: the HTTP/2 codec
     * (server settings, header validation, the larger connection window), one {@link InboundStream}
     * per stream, and the connection's error handler. The fuzz tests drive the same pipeline.
     */
    static void http2(Channel ch, ProxyContext ctx, Duration drainTimeout) throws Exception {
        http2(ch, ctx, drainTimeout, () -> new InboundStream(ctx, StreamProtocol.H2, null));
    }

    private static void http2(Channel ch, ProxyContext ctx, Duration drainTimeout, Supplier<ChannelHandler> streams)
            throws Exception {
        Http2FrameCodec codec = Http2FrameCodecBuilder.forServer().initialSettings(Hbone.serverSettings())
                .gracefulShutdownTimeoutMillis(drainTimeout.toMillis()).validateHeaders(true).build();
        ch.pipeline().addLast("h2", codec).addLast("streams", new Http2MultiplexHandler(
                new ChannelInitializer<Http2StreamChannel>() {
                    @Override
                    protected void initChannel(Http2StreamChannel stream) {
                        // Closing the connection is HTTP/2's graceful shutdown: GOAWAY, open streams finish.
                        stream.pipeline().addLast("credentials", new StaleCredentials(ctx, StreamProtocol.H2,
                                Channel::close)).addLast("connect", streams.get());
                    }
                })).addLast("errors", new ConnectionErrors());
        Hbone.finish(codec);
    }

    /**
     * The verified SPIFFE ID of the client of {@code stream}'s HBONE connection (empty only for a
     * certificate without one, which the handshake refuses).
     */
    public static Optional<SpiffeId> peerId(Http2StreamChannel stream) {
        return stream.parent().attr(PEER_ID).get();
    }

    /**
     * Why a stream's first HEADERS is not an HBONE CONNECT to {@code ip:port} (the agent's own
     * refusal, answered 400), or empty with the target.
     */
    public static Optional<Outcome.BadRequest> connectRefusal(Http2HeadersFrame first) {
        return Hbone.notConnect(first.headers().method(), first.isEndStream(), first.headers().authority());
    }

    /** The target of a CONNECT that {@link #connectRefusal} accepted. */
    public static InetSocketAddress connectTarget(Http2HeadersFrame first) {
        return Hbone.parseAuthority(first.headers().authority()).orElseThrow();
    }

    /** Connection-level errors end that connection only; logged once. */
    private static final class ConnectionErrors extends ChannelInboundHandlerAdapter {
        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            LOG.debug("HBONE connection from {} failed: {}", c.channel().remoteAddress(), cause.toString());
            c.close();
        }
    }

    /** Labels for an inbound connection. */
    static ConnectionLabels labels(InboundDecision d, Optional<SpiffeId> peerId) {
        return new ConnectionLabels("destination", d.source(), peerId, d.destination(),
                d.destination().map(IdentityProvider::workloadId),
                d.destination().flatMap(w -> w.getServicesMap().keySet().stream().findFirst())
                        .map(HboneServer::serviceHost).orElse(""),
                peerId.isPresent());
    }

    /** {@code ns/host} → the hostname as Istio's {@code destination_service} shows it. */
    static String serviceHost(String key) {
        int slash = key.indexOf('/');
        return slash < 0 ? key : key.substring(slash + 1);
    }

    static Telemetry.Flow open(ProxyContext ctx, ConnectionLabels labels, InetSocketAddress src,
            InetSocketAddress dst) {
        return ctx.telemetry().open("inbound", labels, src, dst, null);
    }
}
