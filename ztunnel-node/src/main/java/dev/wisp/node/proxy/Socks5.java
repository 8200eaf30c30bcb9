package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.state.StateUpdates;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.socksx.v5.DefaultSocks5CommandResponse;
import io.netty.handler.codec.socksx.v5.DefaultSocks5InitialResponse;
import io.netty.handler.codec.socksx.v5.Socks5AddressType;
import io.netty.handler.codec.socksx.v5.Socks5AuthMethod;
import io.netty.handler.codec.socksx.v5.Socks5CommandRequest;
import io.netty.handler.codec.socksx.v5.Socks5CommandRequestDecoder;
import io.netty.handler.codec.socksx.v5.Socks5CommandStatus;
import io.netty.handler.codec.socksx.v5.Socks5CommandType;
import io.netty.handler.codec.socksx.v5.Socks5InitialRequest;
import io.netty.handler.codec.socksx.v5.Socks5InitialRequestDecoder;
import io.netty.handler.codec.socksx.v5.Socks5Message;
import io.netty.handler.codec.socksx.v5.Socks5ServerEncoder;
import io.netty.handler.timeout.ReadTimeoutHandler;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executor;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * SOCKS5 on localhost (port 15080, no authentication, CONNECT only) so that an unmodified client
 * can use the mesh without capture. The destination may be IPv4, IPv6 or a host name; a name is
 * first matched against mesh service hostnames (→ the service's VIP), then resolved by DNS.
 *
 * <p>The source workload is the one whose address the client connected from; a client on loopback
 * is taken to be {@code defaultSource} (the agent's configured SOCKS5 workload). The reply is sent
 * only once the tunnel is up or refused, and is the connection's {@link Outcome#socks5Reply}:
 * success only for an allowed tunnel; "not allowed by ruleset" for a denial, "network unreachable"
 * (no route), "host unreachable" (unknown or unreachable destination), "general failure" otherwise.
 */
public final class Socks5 implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Socks5.class);
    private final ProxyContext ctx;
    private final Tunnels outbound;
    private final Resolver dns;
    private final Executor dnsThreads;
    private final Optional<String> defaultSource;
    private Channel listener;

    /** What a SOCKS5 CONNECT becomes: {@link Outbound#tunnel}; the fuzz tests stand in for it. */
    @FunctionalInterface
    interface Tunnels {
        void tunnel(Channel client, InetSocketAddress src, InetSocketAddress dst, Optional<Workload> source,
                Consumer<Outcome> ready);
    }

    /**
     * Host name → address for names that are not mesh services, called on {@code dnsThreads}: DNS on
     * a virtual thread (it may block), or a stand-in in the fuzz tests (which send nothing to DNS).
     */
    @FunctionalInterface
    interface Resolver {
        InetAddress resolve(String host) throws UnknownHostException;
    }

    /** @param defaultSource uid of the workload a loopback client stands for, if any */
    public Socks5(ProxyContext ctx, Outbound outbound, Optional<String> defaultSource) {
        this(ctx, requireNonNull(outbound, "outbound")::tunnel, InetAddress::getByName,
                task -> Thread.ofVirtual().name("socks-dns").start(task), defaultSource);
    }

    Socks5(ProxyContext ctx, Tunnels outbound, Resolver dns, Executor dnsThreads, Optional<String> defaultSource) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.outbound = outbound;
        this.dns = dns;
        this.dnsThreads = dnsThreads;
        this.defaultSource = requireNonNull(defaultSource, "defaultSource");
    }

    /** Binds the listener; the address should be a loopback address. */
    public InetSocketAddress bind(InetSocketAddress address) {
        if (!address.getAddress().isLoopbackAddress()) {
            throw new IllegalArgumentException("SOCKS5 listens on localhost only, not " + address
                    + ": it has no authentication");
        }
        listener = ctx.transport().listen(address, true, this::accept);
        return (InetSocketAddress) listener.localAddress();
    }

    /** The handshake's pipeline on an accepted connection (the fuzz tests install it on theirs). */
    void accept(Channel ch) {
        // The handshake reads by itself; the CONNECT command stops reading until the tunnel is up.
        ch.config().setAutoRead(true);
        ch.pipeline().addLast("timeout", new ReadTimeoutHandler(30))
                .addLast("socks-encoder", Socks5ServerEncoder.DEFAULT)
                .addLast("socks-decoder", new Socks5InitialRequestDecoder()).addLast("socks", new Handshake());
    }

    @Override
    public void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
    }

    private Optional<Workload> source(InetSocketAddress client) {
        Optional<Workload> byAddress = ctx.index().workloadByAddress(client.getAddress())
                .filter(w -> w.getNode().equals(ctx.nodeName()));
        if (byAddress.isPresent() || !client.getAddress().isLoopbackAddress()) {
            return byAddress;
        }
        return defaultSource.flatMap(uid -> ctx.index().snapshot().workload(uid));
    }

    /** Name → VIP for mesh services, so that SOCKS clients can dial services by hostname. */
    private Optional<InetAddress> serviceVip(String host) {
        Map<String, Resource> services = ctx.index().snapshot().resources().getOrDefault(StateUpdates.SERVICE,
                Map.of());
        return services.values().stream().map(Resource::getService)
                .filter(s -> s.getHostname().equalsIgnoreCase(host) && s.getAddressesCount() > 0).findFirst()
                .map(s -> Route.address(s.getAddresses(0)));
    }

    /** Speaks the SOCKS5 handshake, then hands the connection to {@link Outbound#tunnel}. */
    private final class Handshake extends SimpleChannelInboundHandler<Socks5Message> {
        @Override
        protected void channelRead0(ChannelHandlerContext c, Socks5Message msg) {
            if (msg.decoderResult().isFailure()) {
                LOG.debug("SOCKS5 from {}: malformed request", c.channel().remoteAddress());
                c.close();
                return;
            }
            if (msg instanceof Socks5InitialRequest init) {
                if (!init.authMethods().contains(Socks5AuthMethod.NO_AUTH)) {
                    c.writeAndFlush(new DefaultSocks5InitialResponse(Socks5AuthMethod.UNACCEPTED))
                            .addListener(ChannelFutureListener.CLOSE);
                    return;
                }
                c.pipeline().replace("socks-decoder", "socks-decoder", new Socks5CommandRequestDecoder());
                c.writeAndFlush(new DefaultSocks5InitialResponse(Socks5AuthMethod.NO_AUTH));
            } else if (msg instanceof Socks5CommandRequest cmd) {
                c.channel().config().setAutoRead(false);
                if (cmd.type() != Socks5CommandType.CONNECT) {
                    reply(c, Socks5CommandStatus.COMMAND_UNSUPPORTED, cmd.dstAddrType());
                    return;
                }
                connect(c, cmd);
            } else {
                c.close();
            }
        }

        private void connect(ChannelHandlerContext c, Socks5CommandRequest cmd) {
            String host = cmd.dstAddr();
            if (cmd.dstAddrType() == Socks5AddressType.DOMAIN) {
                Optional<InetAddress> vip = serviceVip(host);
                if (vip.isPresent()) {
                    go(c, cmd, new InetSocketAddress(vip.get(), cmd.dstPort()));
                    return;
                }
                // DNS may block: resolve off the event loop.
                dnsThreads.execute(() -> {
                    try {
                        InetAddress a = dns.resolve(host);
                        c.executor().execute(() -> go(c, cmd, new InetSocketAddress(a, cmd.dstPort())));
                    } catch (UnknownHostException e) {
                        c.executor().execute(() -> reply(c, Socks5CommandStatus.HOST_UNREACHABLE, cmd.dstAddrType()));
                    }
                });
                return;
            }
            Optional<InetAddress> literal = Hbone.literal(host);
            if (literal.isEmpty()) {
                reply(c, Socks5CommandStatus.ADDRESS_UNSUPPORTED, cmd.dstAddrType());
                return;
            }
            go(c, cmd, new InetSocketAddress(literal.get(), cmd.dstPort()));
        }

        private void go(ChannelHandlerContext c, Socks5CommandRequest cmd, InetSocketAddress dst) {
            Channel ch = c.channel();
            InetSocketAddress src = (InetSocketAddress) ch.remoteAddress();
            outbound.tunnel(ch, src, dst, source(src), outcome -> {
                // Runs on the tunnel's loop, which may not be this channel's: write finished bytes
                // (the encoder may already be gone when the write executes), then leave the pipeline.
                byte code = outcome.socks5Reply().byteValue();
                // The reply is queued on the channel's loop before anything the relay writes to it.
                Relay.onLoop(ch, () -> {
                    ch.writeAndFlush(Unpooled.wrappedBuffer(new byte[]{5, code, 0, 1, 0, 0, 0, 0, 0, 0}));
                    if (outcome instanceof Outcome.Allowed) {
                        for (String name : List.of("timeout", "socks-decoder", "socks", "socks-encoder")) {
                            if (ch.pipeline().get(name) != null) {
                                ch.pipeline().remove(name);
                            }
                        }
                    }
                });
            });
        }

        private void reply(ChannelHandlerContext c, Socks5CommandStatus status, Socks5AddressType type) {
            c.writeAndFlush(new DefaultSocks5CommandResponse(status, type)).addListener(ChannelFutureListener.CLOSE);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            LOG.debug("SOCKS5 connection from {} failed: {}", c.channel().remoteAddress(), cause.toString());
            c.close();
        }
    }
}
