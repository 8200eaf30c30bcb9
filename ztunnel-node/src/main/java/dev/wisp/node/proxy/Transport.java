package dev.wisp.node.proxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The agent's event loops: one acceptor loop for every listener and {@code workers} I/O loops (one
 * per core by default) shared by all connections, inbound and outbound. Native epoll when
 * available, NIO otherwise. Every connection's handlers run on the loop it is registered with.
 * The agent's listeners and its upstream TCP connections are all made here ({@link #listen},
 * {@link #connect}), so that they share one set of socket options.
 */
public final class Transport implements AutoCloseable {
    final EventLoopGroup acceptor;
    final EventLoopGroup workers;
    final Class<? extends ServerChannel> serverChannel;
    final Class<? extends SocketChannel> socketChannel;

    private Transport(int workers) {
        boolean epoll = Epoll.isAvailable();
        var factory = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
        this.acceptor = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("wisp-accept", true), factory);
        this.workers = new MultiThreadIoEventLoopGroup(workers, new DefaultThreadFactory("wisp-io", true), factory);
        this.serverChannel = epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
        this.socketChannel = epoll ? EpollSocketChannel.class : NioSocketChannel.class;
    }

    /** Loops for {@code workers} I/O threads (0: one per available processor). */
    public static Transport create(int workers) {
        return new Transport(workers <= 0 ? Runtime.getRuntime().availableProcessors() : workers);
    }

    /**
     * A listener on {@code address} whose accepted connections are handed to {@code accept} as they
     * are registered (on their worker loop, before any read): accepted
     * on the acceptor loop, served on a worker loop, TCP_NODELAY, backlog 1024. {@code relayed}
     * listeners (captured traffic, plaintext inbound, SOCKS5) accept with auto-read off and
     * half-closure on, so that nothing is read before the far side is reachable and a FIN passes
     * through as a half-close. Blocks until bound.
     */
    Channel listen(InetSocketAddress address, boolean relayed, Consumer<Channel> accept) {
        ServerBootstrap b = new ServerBootstrap().group(acceptor, workers).channel(serverChannel)
                .option(ChannelOption.SO_BACKLOG, 1024).childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        accept.accept(ch);
                    }
                });
        if (relayed) {
            b.childOption(ChannelOption.AUTO_READ, false).childOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
        } else {
            b.childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, Hbone.WATER_MARK);
        }
        return b.bind(address).syncUninterruptibly().channel();
    }

    /**
     * A TCP connection to {@code to} that a {@link Relay} will carry, on {@code loop} (the loop of
     * the connection it will be joined with): auto-read off until the relay starts, half-closure
     * on, TCP_NODELAY, failing after {@code timeout}.
     */
    ChannelFuture connect(EventLoop loop, InetSocketAddress to, Duration timeout) {
        return new Bootstrap().group(loop).channel(socketChannel).option(ChannelOption.AUTO_READ, false)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true).option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) timeout.toMillis())
                .handler(new ChannelInboundHandlerAdapter()).connect(to);
    }

    /** Whether native epoll is in use. */
    public boolean nativeEpoll() {
        return serverChannel == EpollServerSocketChannel.class;
    }

    @Override
    public void close() {
        acceptor.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        workers.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
