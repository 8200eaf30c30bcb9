package dev.wisp.node.proxy;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A scripted HBONE server for pool and outbound tests: TLS with the given context, HTTP/2 with a
 * chosen MAX_CONCURRENT_STREAMS, every CONNECT answered 200 (or the scripted {@link #connectStatus})
 * and held open until the client ends it. It can
 * stop answering PINGs, and hold each new TCP connection for a while before its TLS handshake (so
 * that a test sees whether a client opens several connections at once). It counts what a pool test
 * asserts: connections accepted and open, connections being set up at once, streams per connection.
 */
final class ScriptedHboneServer implements AutoCloseable {
    private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
    private final Channel listener;
    /** Open TCP connections (thread-safe group). */
    final ChannelGroup open = new DefaultChannelGroup("scripted-hbone", GlobalEventExecutor.INSTANCE);
    final AtomicInteger accepted = new AtomicInteger();
    /** Connections accepted whose TLS handshake has not completed yet; and the most at one time. */
    final AtomicInteger settingUp = new AtomicInteger();
    final AtomicInteger maxSettingUp = new AtomicInteger();
    /** CONNECT streams open now; the most open on one connection at any time. */
    final AtomicInteger streams = new AtomicInteger();
    final AtomicInteger maxStreamsOnOneConnection = new AtomicInteger();
    final AtomicInteger pingsReceived = new AtomicInteger();
    /** The {@code :status} a CONNECT is answered with ({@code null}: none at all), and whether that ends the stream. */
    volatile String connectStatus = "200";
    volatile boolean connectEndsStream;
    /**
     * How many of the next CONNECTs are refused as a stale client certificate is (the real server's
     * {@code StaleCredentials}): the connection told to go away (GOAWAY) ahead of a 421 on the stream.
     */
    final AtomicInteger misdirect = new AtomicInteger();
    /** CONNECTs answered 421 so far. */
    final AtomicInteger misdirected = new AtomicInteger();
    /**
     * How many of the next CONNECTs are left unprocessed as a draining server's GOAWAY leaves a stream
     * that crossed it: GOAWAY with a last stream ID below the stream's, no answer.
     */
    final AtomicInteger leaveUnprocessed = new AtomicInteger();
    /** CONNECTs left unprocessed so far. */
    final AtomicInteger unprocessed = new AtomicInteger();

    /**
     * @param maxConcurrentStreams what the server's SETTINGS advertise
     * @param ackPings whether PINGs are acknowledged (Netty's default) or left unanswered
     * @param setupDelayMillis how long each accepted connection waits before its TLS handshake
     */
    ScriptedHboneServer(SslContext tls, int maxConcurrentStreams, boolean ackPings, long setupDelayMillis) {
        listener = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        accepted.incrementAndGet();
                        open.add(ch);
                        maxSettingUp.accumulateAndGet(settingUp.incrementAndGet(), Math::max);
                        ch.config().setAutoRead(false);
                        ch.eventLoop().schedule(() -> setUp(ch, tls, maxConcurrentStreams, ackPings),
                                setupDelayMillis, TimeUnit.MILLISECONDS);
                    }
                }).bind(new InetSocketAddress("127.0.0.1", 0)).syncUninterruptibly().channel();
    }

    private void setUp(Channel ch, SslContext tls, int maxConcurrentStreams, boolean ackPings) {
        SslHandler ssl = tls.newHandler(ch.alloc());
        ssl.handshakeFuture().addListener(f -> settingUp.decrementAndGet());
        AtomicInteger onThisConnection = new AtomicInteger();
        ch.pipeline().addLast(ssl, Http2FrameCodecBuilder.forServer()
                .initialSettings(Http2Settings.defaultSettings().maxConcurrentStreams(maxConcurrentStreams))
                .autoAckPingFrame(ackPings).build(),
                new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
                    @Override
                    protected void initChannel(Http2StreamChannel stream) {
                        stream.pipeline().addLast(new ConnectStream(onThisConnection));
                    }
                }), new ChannelInboundHandlerAdapter() {
                    @Override
                    public void channelRead(ChannelHandlerContext c, Object msg) {
                        // Connection-level frames the codec passes on, PINGs among them (acknowledged or not).
                        if (msg instanceof io.netty.handler.codec.http2.Http2PingFrame p && !p.ack()) {
                            pingsReceived.incrementAndGet();
                        }
                        ReferenceCountUtil.release(msg);
                    }

                    @Override
                    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
                        c.close();
                    }
                });
        ch.config().setAutoRead(true);
    }

    /** Answers a CONNECT with 200 and keeps the stream open; counts it while open. */
    private final class ConnectStream extends ChannelInboundHandlerAdapter {
        private final AtomicInteger onThisConnection;
        private boolean counted;

        ConnectStream(AtomicInteger onThisConnection) {
            this.onThisConnection = onThisConnection;
        }

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            if (msg instanceof Http2HeadersFrame && !counted && leaveUnprocessed.getAndUpdate(n -> Math.max(0,
                    n - 1)) > 0) {
                unprocessed.incrementAndGet();
                Channel conn = c.channel().parent();
                Http2FrameCodec codec = conn.pipeline().get(Http2FrameCodec.class);
                ChannelHandlerContext cc = conn.pipeline().context(codec);
                int id = ((Http2StreamChannel) c.channel()).stream().id();
                codec.goAway(cc, Math.max(0, id - 2), Http2Error.NO_ERROR.code(), Unpooled.EMPTY_BUFFER, cc
                        .newPromise());
                cc.flush();
            } else if (msg instanceof Http2HeadersFrame h && !counted) {
                counted = true;
                streams.incrementAndGet();
                maxStreamsOnOneConnection.accumulateAndGet(onThisConnection.incrementAndGet(), Math::max);
                String status = "CONNECT".contentEquals(h.headers().method()) ? connectStatus : "400";
                boolean refuse = misdirect.getAndUpdate(n -> Math.max(0, n - 1)) > 0;
                if (refuse) {
                    misdirected.incrementAndGet();
                    c.channel().parent().close(); // HTTP/2's graceful close: GOAWAY first, this stream goes on
                    status = "421";
                }
                DefaultHttp2Headers answer = new DefaultHttp2Headers();
                if (status != null) {
                    answer.status(status);
                }
                c.writeAndFlush(new DefaultHttp2HeadersFrame(answer, connectEndsStream || refuse));
            }
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
            if (counted) {
                streams.decrementAndGet();
                onThisConnection.decrementAndGet();
            }
            c.fireChannelInactive();
        }
    }

    InetSocketAddress address() {
        return (InetSocketAddress) listener.localAddress();
    }

    @Override
    public void close() {
        listener.close().syncUninterruptibly();
        open.close().awaitUninterruptibly(2000);
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
