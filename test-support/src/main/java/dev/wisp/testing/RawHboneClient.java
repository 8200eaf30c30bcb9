package dev.wisp.testing;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;

/**
 * A scripted HBONE client for tests: sends exactly what a test wants, well-formed or not. Its
 * sockets are created on the calling thread, so a caller inside a network namespace ({@link Netns})
 * connects from there.
 */
public final class RawHboneClient implements AutoCloseable {
    private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());

    /**
     * A TLS 1.3 client context offering h2 that presents {@code leaf} whatever the server asks for
     * ({@link AlwaysPresent}) and accepts any server: what an attacker holding a certificate and its
     * key would use, to test the server's check of the client.
     */
    public static SslContext presenting(X509Certificate leaf, PrivateKey key) throws SSLException {
        return SslContextBuilder.forClient().sslProvider(SslProvider.JDK).protocols("TLSv1.3")
                .trustManager(InsecureTrustManagerFactory.INSTANCE).endpointIdentificationAlgorithm(null)
                .keyManager(new AlwaysPresent(leaf, key)).applicationProtocolConfig(new ApplicationProtocolConfig(
                        ApplicationProtocolConfig.Protocol.ALPN,
                        ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
                        ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT, "h2"))
                .build();
    }

    /** Opens TLS (with {@code ctx}) to {@code server}; completes with the channel after the handshake. */
    public Channel tls(SslContext ctx, InetSocketAddress server) throws Exception {
        return connect(ctx, server, false);
    }

    /**
     * With {@code h2}, the HTTP/2 codec sits behind TLS from the start: added after the handshake, it
     * could miss the server's SETTINGS, which may arrive first.
     */
    private Channel connect(SslContext ctx, InetSocketAddress server, boolean h2) throws Exception {
        CompletableFuture<Channel> done = new CompletableFuture<>();
        new Bootstrap().group(group).channel(NioSocketChannel.class).handler(new ChannelInitializer<Channel>() {
            @Override
            protected void initChannel(Channel ch) {
                SslHandler ssl = ctx.newHandler(ch.alloc());
                ch.pipeline().addLast(ssl);
                if (h2) {
                    ch.pipeline().addLast(Http2FrameCodecBuilder.forClient().build(),
                            new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()));
                }
                ssl.handshakeFuture().addListener(f -> {
                    if (f.isSuccess()) {
                        done.complete(ch);
                    } else {
                        done.completeExceptionally(f.cause());
                    }
                });
            }
        }).connect(server).sync();
        return done.get(10, TimeUnit.SECONDS);
    }

    /** Sends one request on a fresh HTTP/2 connection; returns the response status, or "reset"/"closed". */
    public String request(SslContext ctx, InetSocketAddress server, Http2Headers headers) throws Exception {
        return exchange(ctx, server, headers, null);
    }

    /**
     * Sends one request on a fresh HTTP/2 connection and, when {@code data} is not null and the answer
     * is 200, then {@code data} on the stream; returns the status ("reset"/"closed" when there is
     * none), followed, when data was sent, by a space and what came back until the stream ended.
     */
    public String exchange(SslContext ctx, InetSocketAddress server, Http2Headers headers, byte[] data)
            throws Exception {
        Channel ch = connect(ctx, server, true);
        CompletableFuture<String> result = new CompletableFuture<>();
        StringBuilder answer = new StringBuilder();
        Http2StreamChannel stream = new Http2StreamChannelBootstrap(ch).handler(new ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(ChannelHandlerContext c, Object msg) {
                if (msg instanceof Http2HeadersFrame h) {
                    answer.append(h.headers().status());
                    if (data == null || !"200".contentEquals(h.headers().status())) {
                        result.complete(answer.toString());
                    } else {
                        answer.append(' ');
                        c.writeAndFlush(new DefaultHttp2DataFrame(Unpooled.wrappedBuffer(data), false));
                    }
                } else if (msg instanceof Http2DataFrame d) {
                    answer.append(d.content().toString(StandardCharsets.UTF_8));
                    if (d.isEndStream()) {
                        result.complete(answer.toString());
                    }
                } else if (msg instanceof io.netty.handler.codec.http2.Http2ResetFrame) {
                    result.complete(answer.isEmpty() ? "reset" : answer.toString());
                }
                ReferenceCountUtil.release(msg);
            }

            @Override
            public void channelInactive(ChannelHandlerContext c) {
                result.complete(answer.isEmpty() ? "closed" : answer.toString());
            }
        }).open().sync().getNow();
        stream.writeAndFlush(new DefaultHttp2HeadersFrame(headers, false));
        try {
            return result.get(10, TimeUnit.SECONDS);
        } finally {
            ch.close().sync();
        }
    }

    /**
     * Opens TLS and HTTP/2 (with {@code ctx}) to {@code server}: a connection that carries as many
     * streams as a test opens on it and records the server's GOAWAY.
     */
    public Connection connection(SslContext ctx, InetSocketAddress server) throws Exception {
        Channel ch = connect(ctx, server, true);
        Connection c = new Connection(ch);
        ch.pipeline().addLast(new ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(ChannelHandlerContext x, Object msg) {
                if (msg instanceof Http2GoAwayFrame g) {
                    c.goAway.complete(g.lastStreamId());
                }
                ReferenceCountUtil.release(msg);
            }
        });
        return c;
    }

    /** An HTTP/2 connection of {@link #connection}: opens streams, tells whether the server sent GOAWAY. */
    public static final class Connection implements AutoCloseable {
        private final Channel channel;
        /** Completes with the GOAWAY's last stream ID when the server sends one. */
        public final CompletableFuture<Integer> goAway = new CompletableFuture<>();

        Connection(Channel channel) {
            this.channel = channel;
        }

        public Channel channel() {
            return channel;
        }

        /** Opens a stream and sends {@code headers} (without END_STREAM); returns at once. */
        public Stream open(Http2Headers headers) throws Exception {
            Stream s = new Stream();
            Http2StreamChannel ch = new Http2StreamChannelBootstrap(channel).handler(s).open().sync().getNow();
            s.channel = ch;
            ch.writeAndFlush(new DefaultHttp2HeadersFrame(headers, false));
            return s;
        }

        @Override
        public void close() {
            channel.close().syncUninterruptibly();
        }
    }

    /** A stream of a {@link Connection}: its answer's status and the bytes that came back on it. */
    public static final class Stream extends ChannelInboundHandlerAdapter {
        /** The answer's {@code :status}, or "reset"/"closed" when the stream ended without one. */
        public final CompletableFuture<String> status = new CompletableFuture<>();
        private final StringBuffer received = new StringBuffer();
        private volatile Http2StreamChannel channel;

        /** Sends {@code text} as DATA (without END_STREAM). */
        public void send(String text) {
            channel.writeAndFlush(new DefaultHttp2DataFrame(Unpooled.copiedBuffer(text, StandardCharsets.UTF_8),
                    false));
        }

        /** The stream's HTTP/2 ID. */
        public int id() {
            return channel.stream().id();
        }

        /** Everything received as DATA so far. */
        public String received() {
            return received.toString();
        }

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            if (msg instanceof Http2HeadersFrame h && h.headers().status() != null) {
                status.complete(h.headers().status().toString());
            } else if (msg instanceof Http2DataFrame d) {
                received.append(d.content().toString(StandardCharsets.UTF_8));
            } else if (msg instanceof io.netty.handler.codec.http2.Http2ResetFrame) {
                status.complete("reset");
            }
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
            status.complete("closed");
        }
    }

    /** Writes {@code bytes} on an established TLS connection; completes when the server closes it. */
    public boolean closedAfter(Channel ch, ByteBuf bytes) throws Exception {
        ch.writeAndFlush(bytes);
        return ch.closeFuture().await(10, TimeUnit.SECONDS);
    }

    @Override
    public void close() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
