package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.identity.IdentityException;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.spiffe.SpiffeId;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http3.Http3;
import io.netty.handler.codec.http3.Http3ServerConnectionHandler;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicServerCodecBuilder;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The HBONE server over HTTP/3 (UDP, the HBONE port number): QUIC with TLS 1.3 inside, ALPN
 * {@code h3}, a client SVID required and verified by the same trust manager as the HTTP/2 server
 * ({@link dev.wisp.node.tls.HboneTls#quicServer}), then one {@link InboundStream} per request
 * stream — the same validation, {@link InboundDecision}, flows and metrics as HTTP/2, with
 * {@code request_protocol="h3"}.
 *
 * <p>One UDP socket, so every QUIC connection of this server runs on the one worker loop that socket
 * is registered with (QUIC demultiplexes by connection ID in user space; spreading connections over
 * loops needs SO_REUSEPORT sockets and a native transport). The identity presented is the one for
 * the bound address: the node agent's own unless the agent is bound to a workload's address — QUIC
 * connections share one socket, so there is no per-connection local address to choose by as the
 * HTTP/2 server does.
 *
 * <p>A handshake the server refuses (a certificate of another CA, no certificate, no {@code h3}) is
 * recorded once per connection as a refused flow. Drain and close stop the socket after closing
 * every QUIC connection (CONNECTION_CLOSE): HTTP/3 GOAWAY with a grace period is not implemented.
 */
public final class QuicHboneServer implements AutoCloseable {
    private final ProxyContext ctx;
    private final ChannelGroup connections = new DefaultChannelGroup("hbone-quic-server", GlobalEventExecutor.INSTANCE);
    private Channel socket;

    public QuicHboneServer(ProxyContext ctx) {
        this.ctx = requireNonNull(ctx, "ctx");
        ctx.telemetry().gauge("wisp_hbone_quic_server_connections",
                "QUIC connections accepted on the HBONE port (HTTP/3), open", connections::size);
    }

    /** Binds the UDP socket on {@code address}; blocks until bound. */
    public InetSocketAddress bind(InetSocketAddress address) throws IdentityException {
        SpiffeId identity = serverIdentity(address);
        ChannelHandler codec = quicTransportParameters(Http3.newQuicServerCodecBuilder())
                .sslContext(ctx.tls().quicServer(identity))
                .initialMaxStreamsBidirectional(Hbone.SERVER_MAX_STREAMS)
                .handler(new ChannelInitializer<QuicChannel>() {
                    @Override
                    protected void initChannel(QuicChannel quic) {
                        connections.add(quic);
                        quic.pipeline().addLast("refusals", new Refusals(identity))
                                .addLast("h3", new Http3ServerConnectionHandler(
                                        new ChannelInitializer<QuicStreamChannel>() {
                                            @Override
                                            protected void initChannel(QuicStreamChannel stream) {
                                                // A FIN is a half-close, as on TCP: the other direction goes on.
                                                stream.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
                                                stream.pipeline().addLast("connect",
                                                        new InboundStream(ctx, StreamProtocol.H3));
                                            }
                                        }));
                    }
                }).build();
        socket = new Bootstrap().group(ctx.transport().workers).channel(ctx.transport().datagramChannel)
                .handler(codec).bind(address).syncUninterruptibly().channel();
        return (InetSocketAddress) socket.localAddress();
    }

    /**
     * QUIC transport parameters both ends use: HTTP/2's windows (4 MiB per stream, 16 MiB per
     * connection), the pool's idle timeout as QUIC's, room for HTTP/3's unidirectional
     * control and QPACK streams.
     */
    static <B extends io.netty.handler.codec.quic.QuicCodecBuilder<B>> B quicTransportParameters(B b) {
        return b.maxIdleTimeout(QuicHbonePool.IDLE.toMillis(), TimeUnit.MILLISECONDS)
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

    @Override
    public void close() {
        connections.close().awaitUninterruptibly(1000);
        if (socket != null) {
            socket.close().syncUninterruptibly();
        }
    }

    /** Records a refused handshake once per connection, as the HTTP/2 server does. */
    private final class Refusals extends ChannelInboundHandlerAdapter {
        private final SpiffeId identity;

        Refusals(SpiffeId identity) {
            this.identity = identity;
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext c, Object evt) {
            if (evt instanceof SslHandshakeCompletionEvent hs && !hs.isSuccess()) {
                QuicChannel quic = (QuicChannel) c.channel();
                ConnectionLabels labels = new ConnectionLabels("destination", Optional.empty(), Optional.empty(),
                        Optional.empty(), Optional.of(identity), "", false, "h3");
                ctx.telemetry().refused("inbound", labels, quic.remoteSocketAddress(), quic.localSocketAddress(),
                        TlsRefusals.of(hs.cause(), Optional.empty()));
            }
            c.fireUserEventTriggered(evt);
        }
    }
}
