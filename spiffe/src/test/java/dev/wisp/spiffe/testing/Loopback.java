package dev.wisp.spiffe.testing;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.tls.SpiffeTls;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Two Netty endpoints on 127.0.0.1: a TLS server and a client that connects to it once per
 * {@link #handshake}. Reports what each side saw. Close to stop the event loops.
 */
public final class Loopback implements AutoCloseable {
    /** One side's view of a handshake: success with the peer's ID and ALPN protocol, or the cause. */
    public record Side(boolean ok, SpiffeId peer, String protocol, String alpn, Throwable cause) {}

    /** Both sides of one handshake. */
    public record Outcome(Side client, Side server) {
        public boolean bothOk() {
            return client.ok() && server.ok();
        }
    }

    private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());

    /** Runs one handshake between fresh connections of {@code server} and {@code client}. */
    public Outcome handshake(SslContext server, SslContext client) throws Exception {
        CompletableFuture<Side> serverSide = new CompletableFuture<>();
        Channel listener = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        SslHandler ssl = server.newHandler(ch.alloc());
                        ch.pipeline().addLast(ssl);
                        ssl.handshakeFuture().addListener(f -> serverSide.complete(side(ssl, f.cause())));
                    }
                }).bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
        try {
            CompletableFuture<Side> clientSide = new CompletableFuture<>();
            Channel ch = new Bootstrap().group(group).channel(NioSocketChannel.class)
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel c) {
                            SslHandler ssl = client.newHandler(c.alloc());
                            c.pipeline().addLast(ssl);
                            ssl.handshakeFuture().addListener(f -> clientSide.complete(side(ssl, f.cause())));
                        }
                    }).connect(listener.localAddress()).sync().channel();
            try {
                Side s = serverSide.get(10, TimeUnit.SECONDS);
                Side c = clientSide.get(10, TimeUnit.SECONDS);
                return new Outcome(c, s);
            } finally {
                ch.close().sync();
            }
        } finally {
            listener.close().sync();
        }
    }

    private static Side side(SslHandler ssl, Throwable cause) {
        if (cause != null) {
            return new Side(false, null, null, null, cause);
        }
        try {
            return new Side(true, SpiffeTls.peerId(ssl.engine().getSession()), ssl.engine().getSession().getProtocol(),
                    ssl.applicationProtocol(), null);
        } catch (Exception e) {
            return new Side(false, null, null, null, e);
        }
    }

    @Override
    public void close() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
