package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.state.Snapshot;
import dev.wisp.node.telemetry.Telemetry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelOption;
import java.net.InetSocketAddress;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Plaintext inbound (port 15006): connections captured on their way into a workload of this node
 * without HBONE. Allowed only when the workload's PeerAuthentication is not STRICT (for that port)
 * and L4 policy allows a source without identity; refused connections are reset. Allowed ones are
 * tracked by the {@link ConnectionManager}, which resets them when a later policy denies them.
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
        listener = ctx.transport().listen(address, true, this::accept);
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
        Snapshot state = ctx.index().snapshot();
        InboundDecision d = InboundDecision.decide(state, ctx.nodeName(), ctx.agentPorts(), Optional.empty(),
                src.getAddress(), dst.get());
        Telemetry.Flow flow = HboneServer.open(ctx, HboneServer.labels(d, Optional.empty()), src, dst.get());
        if (!(d.outcome() instanceof Outcome.Allowed)) {
            ch.config().setOption(ChannelOption.SO_LINGER, 0);
            ch.close();
            flow.close(d.outcome());
            return;
        }
        ctx.transport().connect(ch.eventLoop(), src.getAddress(), dst.get(), ctx.connectTimeout())
                .addListener((ChannelFutureListener) f -> {
                    if (!f.isSuccess()) {
                        ch.close();
                        flow.close(new Outcome.Unreachable("connection to " + dst.get() + " failed: "
                                + f.cause().getMessage()));
                        return;
                    }
                    Relay.join(ch, f.channel(), flow);
                    ctx.connections().track(new ConnectionManager.Basis(Optional.empty(), src.getAddress(),
                            dst.get()), state, flow, f.channel());
                });
    }

    @Override
    public void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
    }
}
