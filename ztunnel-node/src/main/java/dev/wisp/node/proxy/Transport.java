package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

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
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioChannelOption;
import io.netty.channel.unix.UnixChannelOption;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringDatagramChannel;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The agent's event loops: one acceptor loop for every listener and {@code workers} I/O loops (one
 * per core by default) shared by all connections, inbound and outbound, on one {@link Kind} of
 * Netty transport. Every connection's handlers run on the loop it is registered with.
 * The agent's listeners and its upstream TCP connections are all made here ({@link #listen},
 * {@link #connect}), so that they share one set of socket options.
 */
public final class Transport implements AutoCloseable {
    /**
     * The Netty socket transports the agent runs on. Not native epoll: Netty 4.2.18–4.2.20 drop a
     * half-closed, paused channel from the epoll set and then fail to resume it, which loses relayed
     * data ({@code NativeTransportTest} reproduces it; ARCHITECTURE.md, "Event loops").
     */
    public enum Kind {
        /** The JDK's selector: always there. */
        NIO,
        /** Linux io_uring through Netty's native transport, when the kernel and its seccomp policy allow it. */
        IO_URING;

        /** Whether this machine can run it (io_uring may be disabled by sysctl or a seccomp profile). */
        public boolean available() {
            return switch (this) {
                case NIO -> true;
                case IO_URING -> IoUring.isAvailable();
            };
        }

        /** Why it cannot run here, for the error that refuses it. */
        public String unavailability() {
            Throwable cause = switch (this) {
                case NIO -> null;
                case IO_URING -> IoUring.unavailabilityCause();
            };
            return cause == null ? "available" : cause.toString();
        }

        /** The lower-case name {@code wisp node --transport} takes and the logs print. */
        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The kind named {@code label} ({@code nio}, {@code io_uring}). */
        public static Kind parse(String label) {
            for (Kind k : values()) {
                if (k.label().equals(requireNonNull(label, "label"))) {
                    return k;
                }
            }
            throw new IllegalArgumentException("unknown transport '" + label + "': nio or io_uring (native epoll is "
                    + "not offered: Netty 4.2's epoll loses relayed data, see ARCHITECTURE.md)");
        }
    }

    final EventLoopGroup acceptor;
    final EventLoopGroup workers;
    final Class<? extends ServerChannel> serverChannel;
    final Class<? extends SocketChannel> socketChannel;
    /** UDP sockets for QUIC (HBONE over HTTP/3), on the same loops. */
    final Class<? extends DatagramChannel> datagramChannel;
    private final Kind kind;
    private volatile UpstreamSource upstreamSource = UpstreamSource.NODE;

    private Transport(int workers, Kind kind) {
        if (!kind.available()) {
            throw new IllegalArgumentException("the " + kind.label() + " transport cannot run here: "
                    + kind.unavailability() + " (use --transport nio)");
        }
        this.kind = kind;
        IoHandlerFactory factory = switch (kind) {
            case NIO -> NioIoHandler.newFactory();
            case IO_URING -> IoUringIoHandler.newFactory();
        };
        this.acceptor = new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("wisp-accept", true), factory);
        this.workers = new MultiThreadIoEventLoopGroup(workers, new DefaultThreadFactory("wisp-io", true), factory);
        this.serverChannel = switch (kind) {
            case NIO -> NioServerSocketChannel.class;
            case IO_URING -> IoUringServerSocketChannel.class;
        };
        this.socketChannel = switch (kind) {
            case NIO -> NioSocketChannel.class;
            case IO_URING -> IoUringSocketChannel.class;
        };
        this.datagramChannel = switch (kind) {
            case NIO -> NioDatagramChannel.class;
            case IO_URING -> IoUringDatagramChannel.class;
        };
    }

    /** Loops for {@code workers} I/O threads (0: one per available processor) on NIO. */
    public static Transport create(int workers) {
        return create(workers, Kind.NIO);
    }

    /** Loops for {@code workers} I/O threads (0: one per available processor) on {@code kind}. */
    public static Transport create(int workers, Kind kind) {
        return new Transport(workers <= 0 ? Runtime.getRuntime().availableProcessors() : workers,
                requireNonNull(kind, "kind"));
    }

    /**
     * A listener on {@code address} whose accepted connections are handed to {@code accept} as they
     * are registered (on their worker loop, before any read): accepted
     * on the acceptor loop, served on a worker loop, TCP_NODELAY, backlog 1024. {@code relayed}
     * listeners (captured traffic, plaintext inbound, SOCKS5) accept with auto-read off and
     * half-closure on, so that nothing is read before the far side is reachable and a FIN passes
     * through as a half-close. Bound with {@code SO_REUSEPORT}, so that a new agent of the node binds
     * the same ports beside this one while it takes over ({@code wisp node --takeover}); with
     * {@code net.ipv4.tcp_migrate_req=1} the connections queued on a closing listener move to the
     * other. Blocks until bound.
     */
    Channel listen(InetSocketAddress address, boolean relayed, Consumer<Channel> accept) {
        ServerBootstrap b = new ServerBootstrap().group(acceptor, workers).channel(serverChannel)
                .option(ChannelOption.SO_BACKLOG, 1024).option(reusePort(), true)
                .childOption(ChannelOption.TCP_NODELAY, true)
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

    /** {@code SO_REUSEPORT} as this kind of channel takes it. */
    private ChannelOption<Boolean> reusePort() {
        return switch (kind) {
            case NIO -> NioChannelOption.of(StandardSocketOptions.SO_REUSEPORT);
            case IO_URING -> UnixChannelOption.SO_REUSEPORT;
        };
    }

    /**
     * A TCP connection to {@code to} that a {@link Relay} will carry, on {@code loop} (the loop of
     * the connection it will be joined with): auto-read off until the relay starts, half-closure
     * on, TCP_NODELAY, failing after {@code timeout}.
     */
    ChannelFuture connect(EventLoop loop, InetSocketAddress to, Duration timeout) {
        return bootstrap(loop, timeout).channel(socketChannel).connect(to);
    }

    /**
     * As {@link #connect(EventLoop, InetSocketAddress, Duration)}, to a workload of this node, from
     * {@code source} when the {@link #upstreamSource} can make such a socket (NIO only: the socket is
     * a JDK channel), else from the agent's own address.
     */
    ChannelFuture connect(EventLoop loop, InetAddress source, InetSocketAddress to, Duration timeout) {
        Optional<UpstreamSource.Upstream> from = kind == Kind.NIO
                ? upstreamSource.open(source, to)
                : Optional.empty();
        if (from.isEmpty()) {
            return connect(loop, to, timeout);
        }
        io.netty.channel.ChannelFactory<Channel> made = () -> new NioSocketChannel(from.get().channel());
        ChannelFuture f = bootstrap(loop, timeout).channelFactory(made).connect(to);
        f.addListener(done -> from.get().settled().run());
        return f;
    }

    private static Bootstrap bootstrap(EventLoop loop, Duration timeout) {
        return new Bootstrap().group(loop).option(ChannelOption.AUTO_READ, false)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true).option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) timeout.toMillis())
                .handler(new ChannelInboundHandlerAdapter());
    }

    /**
     * Where connections to workloads of this node come from from now on (capture sets the client's
     * address); {@link UpstreamSource#NODE} by default.
     */
    public void upstreamSource(UpstreamSource source) {
        this.upstreamSource = requireNonNull(source, "source");
    }

    /** The kind of transport in use. */
    public Kind kind() {
        return kind;
    }

    @Override
    public void close() {
        acceptor.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        workers.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
