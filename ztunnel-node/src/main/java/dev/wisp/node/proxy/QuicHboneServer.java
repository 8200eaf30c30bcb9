package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.spiffe.SpiffeId;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.ChannelGroupFuture;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http3.DefaultHttp3GoAwayFrame;
import io.netty.handler.codec.http3.Http3;
import io.netty.handler.codec.http3.Http3ErrorCode;
import io.netty.handler.codec.http3.Http3ServerConnectionHandler;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicServerCodecBuilder;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The HBONE server over HTTP/3 (UDP, the HBONE port number): QUIC with TLS 1.3 inside, ALPN
 * {@code h3}, a client SVID required and verified by the same trust manager as the HTTP/2 server
 * ({@link dev.wisp.node.tls.HboneTls#quicServer}), then one {@link InboundStream} per request
 * stream — the same validation, {@link InboundDecision}, flows and metrics as HTTP/2, with
 * {@code request_protocol="h3"}.
 *
 * <p>One UDP socket, so every QUIC connection of this server runs on the one worker loop that socket
 * is registered with (QUIC demultiplexes by connection ID in user space; spreading connections over
 * loops needs SO_REUSEPORT sockets and a native transport). The identity presented is chosen at
 * each handshake by the address the socket is bound to, as the HTTP/2 server chooses by each
 * connection's local address: a workload of this node at that address (an agent bound to a
 * workload's address) presents the workload's SVID, as soon as the state names the workload;
 * otherwise the node's. On a wildcard bind every QUIC connection presents the node's SVID, where
 * HTTP/2 would present the workload's for a connection that arrived on a workload's address: Netty's
 * NIO datagram channel gives each datagram the socket's bound address as its recipient, not the
 * address it was sent to (that needs IP_PKTINFO / IP_RECVORIGDSTADDR, which only a native transport
 * reads), and the TLS context of a QUIC server codec is one for all connections (its per-connection
 * choice is by SNI, which HBONE clients dialling an IP address do not send).
 *
 * <p>Every request stream first passes {@link StaleCredentials}: one on a connection whose client
 * certificate chain expired or lost its root since the handshake is refused (421) and the connection
 * gets the drain's GOAWAY, with the agent's drain timeout as its deadline.
 *
 * <p>A handshake the server refuses (a certificate of another CA, no certificate, no {@code h3}) is
 * recorded once per connection as a refused flow.
 *
 * <p>Drain ({@link #drain}) is HTTP/2's over HTTP/3: new QUIC connections are closed as they
 * arrive (after their handshake), every open one gets a GOAWAY (RFC 9114 §5.2) naming the first request stream it will not
 * serve, a request stream opened after that is rejected ({@code H3_REQUEST_REJECTED}), and open
 * streams go on. A connection is closed ({@code H3_NO_ERROR}) {@link #LINGER} after its last stream
 * ended — the socket must outlive the streams' last bytes: QUIC ends a stream when its FIN is handed
 * to quiche, not when the peer acknowledged it, and a CONNECTION_CLOSE discards what is not yet
 * sent — or at the drain deadline. {@link #close} closes every connection at once.
 */
public final class QuicHboneServer implements AutoCloseable {
    /** How long a draining connection stays open after its last stream ended (retransmissions of its tail). */
    static final Duration LINGER = Duration.ofSeconds(1);
    private final ProxyContext ctx;
    /** How long a connection sent GOAWAY for a stale client certificate lets its open streams go on. */
    private final Duration goAwayGrace;
    /** Set once by {@link #drain}: new connections are closed, open ones go away. */
    private volatile Instant drainDeadline;
    private final ChannelGroup connections = new DefaultChannelGroup("hbone-quic-server", GlobalEventExecutor.INSTANCE);
    private Channel socket;

    /** {@code drainTimeout}: as HTTP/2's, how long open streams may go on after a GOAWAY for a stale certificate. */
    public QuicHboneServer(ProxyContext ctx, Duration drainTimeout) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.goAwayGrace = requireNonNull(drainTimeout, "drainTimeout");
    }

    /**
     * Binds the UDP socket on {@code address}; blocks until bound. It needs no certificate yet: the
     * SVID is asked at each handshake, so an agent that starts before its certificate can be signed
     * (the control plane slow or out of reach) refuses QUIC handshakes until it has one, as its
     * HTTP/2 server refuses TLS connections, and serves HTTP/3 from then on.
     */
    public InetSocketAddress bind(InetSocketAddress address) {
        Supplier<SpiffeId> identity = () -> serverIdentity(address);
        ChannelHandler codec = quicTransportParameters(Http3.newQuicServerCodecBuilder())
                .tokenHandler(RetryTokens.create())
                .sslContext(ctx.tls().quicServer(identity))
                .initialMaxStreamsBidirectional(Hbone.SERVER_MAX_STREAMS)
                .handler(new ChannelInitializer<QuicChannel>() {
                    @Override
                    protected void initChannel(QuicChannel quic) {
                        if (drainDeadline != null) {
                            // Closed once the handshake is done: before it, quiche's CONNECTION_CLOSE
                            // never reaches the client, which would wait out its handshake timeout.
                            quic.pipeline().addLast("draining", new ChannelInboundHandlerAdapter() {
                                @Override
                                public void channelActive(ChannelHandlerContext c) {
                                    closeNow(quic);
                                }
                            });
                            return;
                        }
                        connections.add(quic);
                        Streams streams = new Streams(quic);
                        quic.pipeline().addLast("refusals", new Refusals(identity)).addLast("streams", streams)
                                .addLast("h3", new Http3ServerConnectionHandler(
                                        new ChannelInitializer<QuicStreamChannel>() {
                                            @Override
                                            protected void initChannel(QuicStreamChannel stream) {
                                                // A FIN is a half-close, as on TCP: the other direction goes on.
                                                stream.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
                                                if (!streams.admit(stream)) {
                                                    return;
                                                }
                                                stream.pipeline().addLast("credentials", new StaleCredentials(ctx,
                                                        StreamProtocol.H3, conn -> streams.goAway(Instant.now()
                                                                .plus(goAwayGrace))))
                                                        .addLast("connect",
                                                                new InboundStream(ctx, StreamProtocol.H3, null));
                                            }
                                        }));
                    }
                }).build();
        socket = new Bootstrap().group(ctx.transport().workers).channel(ctx.transport().datagramChannel)
                .handler(codec).bind(address).syncUninterruptibly().channel();
        // Once bound: an agent may make several servers before one binds (its port taken), and the
        // registry keeps the first gauge of a name.
        ctx.telemetry().gauge("wisp_hbone_quic_server_connections",
                "QUIC connections accepted on the HBONE port (HTTP/3), open", connections::size);
        return (InetSocketAddress) socket.localAddress();
    }

    /**
     * QUIC transport parameters both ends use: HTTP/2's windows (4 MiB per stream, 16 MiB per
     * connection), {@link QuicHbonePool#QUIC_IDLE} as QUIC's idle timeout (the client's keepalives
     * keep a live connection open), room for HTTP/3's unidirectional control and QPACK streams.
     */
    static <B extends io.netty.handler.codec.quic.QuicCodecBuilder<B>> B quicTransportParameters(B b) {
        return b.maxIdleTimeout(QuicHbonePool.QUIC_IDLE.toMillis(), TimeUnit.MILLISECONDS)
                .initialMaxData(Hbone.CONNECTION_WINDOW)
                .initialMaxStreamDataBidirectionalLocal(Hbone.STREAM_WINDOW)
                .initialMaxStreamDataBidirectionalRemote(Hbone.STREAM_WINDOW)
                .initialMaxStreamDataUnidirectional(64 * 1024).initialMaxStreamsUnidirectional(8);
    }

    private SpiffeId serverIdentity(InetSocketAddress local) {
        return ctx.index().workloadByAddress(local.getAddress()).filter(x -> x.getNode().equals(ctx.nodeName()))
                .map(IdentityProvider::workloadId)
                .orElseGet(() -> IdentityProvider.nodeId(ctx.tls().identities().trustDomain(), ctx.nodeName()));
    }

    /** QUIC connections currently open. */
    public int connections() {
        return connections.size();
    }

    /**
     * Starts draining (see the class comment) without waiting: the future completes when every QUIC
     * connection open now has closed, at the latest at {@code timeout} plus the socket's last flush.
     * The socket stays bound until {@link #close}.
     */
    public ChannelGroupFuture drain(Duration timeout) {
        drainDeadline = Instant.now().plus(requireNonNull(timeout, "timeout"));
        ChannelGroupFuture closed = connections.newCloseFuture();
        for (Channel c : connections) {
            c.eventLoop().execute(() -> c.pipeline().get(Streams.class).goAway(drainDeadline));
        }
        return closed;
    }

    @Override
    public void close() {
        connections.close().awaitUninterruptibly(1000);
        if (socket != null) {
            socket.close().syncUninterruptibly();
        }
    }

    private static void closeNow(QuicChannel quic) {
        quic.close(true, Http3ErrorCode.H3_NO_ERROR.code(), Unpooled.EMPTY_BUFFER);
    }

    /**
     * One connection's request streams and its drain. Connection's event loop only (its streams'
     * initialisers and close listeners run there too).
     */
    private final class Streams extends ChannelInboundHandlerAdapter {
        private final QuicChannel quic;
        private int open;
        /** The lowest client-initiated bidirectional stream ID not yet seen: a GOAWAY names it. */
        private long next;
        /** Streams from this ID on are refused; -1 until the GOAWAY. */
        private long goAwayId = -1;
        private ScheduledFuture<?> closing;

        Streams(QuicChannel quic) {
            this.quic = quic;
        }

        /** Counts {@code stream} open, or rejects it when the GOAWAY already excluded it. */
        boolean admit(QuicStreamChannel stream) {
            if (goAwayId >= 0 && stream.streamId() >= goAwayId) {
                stream.shutdown(Http3ErrorCode.H3_REQUEST_REJECTED.code())
                        .addListener(ChannelFutureListener.CLOSE);
                return false;
            }
            next = Math.max(next, stream.streamId() + 4);
            open++;
            if (closing != null) { // a stream below the GOAWAY's ID that arrived after the last one ended
                closing.cancel(false);
                closing = null;
            }
            stream.closeFuture().addListener(f -> {
                if (--open == 0 && goAwayId >= 0) {
                    closeIn(LINGER);
                }
            });
            return true;
        }

        /** No streams after the ones seen so far; the connection closes after its last stream, or at {@code deadline}. */
        void goAway(Instant deadline) {
            if (goAwayId >= 0 || !quic.isActive()) {
                return;
            }
            goAwayId = next;
            QuicStreamChannel control = Http3.getLocalControlStream(quic);
            if (control != null) {
                control.writeAndFlush(new DefaultHttp3GoAwayFrame(goAwayId));
            }
            quic.eventLoop().schedule(this::closeNow, Math.max(0, Duration.between(Instant.now(), deadline)
                    .toMillis()), TimeUnit.MILLISECONDS);
            if (open == 0) {
                closeIn(LINGER);
            }
        }

        private void closeIn(Duration linger) {
            closing = quic.eventLoop().schedule(this::closeNow, linger.toMillis(), TimeUnit.MILLISECONDS);
        }

        private void closeNow() {
            QuicHboneServer.closeNow(quic);
        }
    }

    /** Records a refused handshake once per connection, as the HTTP/2 server does. */
    private final class Refusals extends ChannelInboundHandlerAdapter {
        private final Supplier<SpiffeId> identity;

        Refusals(Supplier<SpiffeId> identity) {
            this.identity = identity;
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext c, Object evt) {
            if (evt instanceof SslHandshakeCompletionEvent hs && !hs.isSuccess()) {
                QuicChannel quic = (QuicChannel) c.channel();
                ConnectionLabels labels = new ConnectionLabels("destination", Optional.empty(), Optional.empty(),
                        Optional.empty(), Optional.of(identity.get()), "", false, ConnectionLabels.H3);
                ctx.telemetry().refused("inbound", labels, quic.remoteSocketAddress(), quic.localSocketAddress(),
                        TlsRefusals.of(hs.cause(), Optional.empty()));
            }
            c.fireUserEventTriggered(evt);
        }
    }
}
