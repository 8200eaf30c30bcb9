package dev.wisp.node.proxy;

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
import java.util.concurrent.TimeUnit;

/**
 * The agent's event loops: one acceptor loop for every listener and {@code workers} I/O loops (one
 * per core by default) shared by all connections, inbound and outbound. Native epoll when
 * available, NIO otherwise. Every connection's handlers run on the loop it is registered with.
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
