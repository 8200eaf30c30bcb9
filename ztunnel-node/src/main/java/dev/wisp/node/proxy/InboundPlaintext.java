package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.telemetry.Telemetry;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import java.net.InetSocketAddress;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Plaintext inbound (port 15006): connections captured on their way into a workload of this node
 * without HBONE. Allowed only when the workload's PeerAuthentication is not STRICT (for that port)
 * and L4 policy allows a source without identity; refused connections are reset.
 */
public final class InboundPlaintext implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(InboundPlaintext.class);
    private final ProxyContext ctx;
    private final OriginalDestinationResolver resolver;
    private Channel listener;

    public InboundPlaintext(ProxyContext ctx, OriginalDestinationResolver resolver) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.resolver = requireNonNull(resolver, "resolver");
    }

    public InetSocketAddress bind(InetSocketAddress address) {
        listener = new ServerBootstrap().group(ctx.transport().acceptor, ctx.transport().workers)
                .channel(ctx.transport().serverChannel).option(ChannelOption.SO_BACKLOG, 1024)
                .childOption(ChannelOption.AUTO_READ, false).childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childOption(ChannelOption.TCP_NODELAY, true).childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        accept(ch);
                    }
                }).bind(address).syncUninterruptibly().channel();
        return (InetSocketAddress) listener.localAddress();
    }

    private void accept(Channel ch) {
        InetSocketAddress src = (InetSocketAddress) ch.remoteAddress();
        Optional<InetSocketAddress> dst = resolver.originalDestination(ch);
        if (dst.isEmpty()) {
            LOG.warn("plaintext inbound from {} closed: original destination unknown", src);
            ch.close();
            return;
        }
        InboundDecision d = InboundDecision.decide(ctx.index().snapshot(), ctx.nodeName(), ctx.agentPorts(),
                Optional.empty(), src.getAddress(), dst.get());
        Telemetry.Flow flow = HboneServer.open(ctx, HboneServer.labels(d, Optional.empty()), src, dst.get());
        if (d.status() != 200) {
            ch.config().setOption(ChannelOption.SO_LINGER, 0);
            ch.close();
            flow.close("refused (" + d.status() + "): " + d.reason());
            return;
        }
        new Bootstrap().group(ch.eventLoop()).channel(ctx.transport().socketChannel)
                .option(ChannelOption.AUTO_READ, false).option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) ctx.connectTimeout().toMillis())
                .handler(new ChannelInboundHandlerAdapter()).connect(dst.get())
                .addListener((ChannelFutureListener) f -> {
                    if (!f.isSuccess()) {
                        ch.close();
                        flow.close("connection to " + dst.get() + " failed: " + f.cause().getMessage());
                        return;
                    }
                    Relay.join(ch, f.channel(), Relay.counting(flow::toServer, flow::toClient, flow::close));
                });
    }

    @Override
    public void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
    }
}
