package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.spiffe.SpiffeId;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The outbound side: takes a workload's TCP connection (captured on port 15001, or from SOCKS5),
 * routes it ({@link Route}: service VIP → endpoint round robin, workload → its node's agent or
 * waypoint, elsewhere → plain TCP) and relays it through an HBONE stream from the {@link HbonePool}
 * or a direct TCP connection.
 *
 * <p>The CONNECT request carries {@code :authority} = the destination workload's ip:port and
 * {@code forwarded: for="<source ip:port>"}. The accepted connection's auto-read stays off until the
 * tunnel answers 200, so nothing is read from the workload before the destination is reachable.
 */
public final class Outbound implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Outbound.class);
    private final ProxyContext ctx;
    private final HbonePool pool;
    private final OriginalDestinationResolver resolver;
    /** Service key → round-robin counter. Thread-safe. */
    private final Map<String, AtomicInteger> roundRobin = new ConcurrentHashMap<>();
    private Channel listener;

    public Outbound(ProxyContext ctx, HbonePool pool, OriginalDestinationResolver resolver) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.pool = requireNonNull(pool, "pool");
        this.resolver = requireNonNull(resolver, "resolver");
    }

    /** Binds the captured-traffic listener (15001). */
    public InetSocketAddress bind(InetSocketAddress address) {
        listener = ctx.transport().listen(address, true, ch -> {
            Optional<InetSocketAddress> dst = resolver.originalDestination(ch);
            if (dst.isEmpty()) {
                LOG.warn("outbound connection from {} closed: its original destination is unknown "
                        + "(is capture set up for this workload?)", ch.remoteAddress());
                ch.close();
                return;
            }
            tunnel(ch, (InetSocketAddress) ch.remoteAddress(), dst.get(), outcome -> {});
        });
        return (InetSocketAddress) listener.localAddress();
    }

    /**
     * Carries {@code client} (auto-read off, active) to {@code dst}. {@code ready} runs once, before
     * any byte is relayed, with {@link Outcome.Allowed} when the tunnel is up or the refusal or
     * failure otherwise; on failure the client is closed after it.
     */
    public void tunnel(Channel client, InetSocketAddress src, InetSocketAddress dst, Consumer<Outcome> ready) {
        tunnel(client, src, dst, ctx.index().workloadByAddress(src.getAddress())
                .filter(w -> w.getNode().equals(ctx.nodeName())), ready);
    }

    /** As {@link #tunnel(Channel, InetSocketAddress, InetSocketAddress, Consumer)}, with the source given. */
    public void tunnel(Channel client, InetSocketAddress src, InetSocketAddress dst, Optional<Workload> source,
            Consumer<Outcome> ready) {
        Optional<SpiffeId> srcId = source.map(IdentityProvider::workloadId);
        if (Hbone.meshPort(dst.getPort(), ctx.agentPorts()) && ctx.index().workloadByAddress(dst.getAddress())
                .map(w -> w.getNode().equals(ctx.nodeName())).orElse(false)) {
            fail(client, ready, new Outcome.Loop("destination " + dst + " is an agent port (loop)"),
                    unrouted(src, dst, source, srcId));
            return;
        }
        Route route;
        try {
            route = Route.of(ctx.index().snapshot(), dst,
                    key -> roundRobin.computeIfAbsent(key, k -> new AtomicInteger()).getAndIncrement(),
                    ctx.hbonePort());
        } catch (Route.NoRouteException e) {
            fail(client, ready, e.outcome(), unrouted(src, dst, source, srcId));
            return;
        }
        Telemetry.Flow flow = ctx.telemetry().open("outbound",
                new ConnectionLabels("source", source, srcId, route.destination(),
                        route.destination().filter(w -> route.hbone()).map(IdentityProvider::workloadId),
                        route.service(), route.hbone()),
                src, route.target(), route.hbone() ? Hbone.authority(route.connectTo()) : null);
        if (!route.hbone()) {
            direct(client, route, flow, ready);
            return;
        }
        if (source.isEmpty()) {
            fail(client, ready, new Outcome.NoSourceIdentity("source " + src + " is not a workload of node "
                    + ctx.nodeName() + ": no identity to present"), flow);
            return;
        }
        PoolKey key = new PoolKey(srcId.get(), route.expectedIdentities(), route.connectTo());
        Http2Headers headers = new DefaultHttp2Headers().method("CONNECT").authority(Hbone.authority(route.target()))
                .add("forwarded", "for=\"" + Hbone.authority(forwardedFor(src, source.get())) + "\"");
        HboneTunnel.open(pool, key, headers, stream -> {
            if (!client.isActive()) {
                stream.close();
                flow.close(new Outcome.ClientClosed("client closed before the tunnel was up"));
                return;
            }
            ready.accept(Outcome.allowed());
            Relay.join(client, stream, flow);
        }, client.eventLoop()).addListener((Future<Http2StreamChannel> f) -> {
            if (!f.isSuccess()) {
                fail(client, ready, f.cause() instanceof HboneTunnel.Refused r
                        ? r.outcome()
                        : new Outcome.Unreachable("HBONE stream to " + key.destination() + " could not be opened: "
                                + f.cause().getMessage()),
                        flow);
            }
        });
    }

    /**
     * The source address the destination sees in {@code forwarded}: the client's own, unless it is a
     * loopback address (a SOCKS5 client on the node), which means nothing elsewhere: then the
     * source workload's address.
     */
    private static InetSocketAddress forwardedFor(InetSocketAddress src, Workload source) {
        if (!src.getAddress().isLoopbackAddress() || source.getAddressesCount() == 0) {
            return src;
        }
        return new InetSocketAddress(Route.address(source.getAddresses(0)), src.getPort());
    }

    private void direct(Channel client, Route route, Telemetry.Flow flow, Consumer<Outcome> ready) {
        ctx.transport().connect(client.eventLoop(), route.connectTo(), ctx.connectTimeout())
                .addListener((ChannelFutureListener) f -> {
                    if (!f.isSuccess()) {
                        fail(client, ready, new Outcome.Unreachable("connection to " + route.connectTo() + " failed: "
                                + f.cause().getMessage()), flow);
                        return;
                    }
                    if (!client.isActive()) {
                        f.channel().close();
                        flow.close(new Outcome.ClientClosed("client closed before the connection was up"));
                        return;
                    }
                    ready.accept(Outcome.allowed());
                    Relay.join(client, f.channel(), flow);
                });
    }

    /** The flow of a connection refused before it had a route: its destination is only the address asked for. */
    private Telemetry.Flow unrouted(InetSocketAddress src, InetSocketAddress dst, Optional<Workload> source,
            Optional<SpiffeId> srcId) {
        return ctx.telemetry().open("outbound", new ConnectionLabels("source", source, srcId, Optional.empty(),
                Optional.empty(), "", false), src, dst, null);
    }

    /** Tells the client (SOCKS5 reply), closes it and records the outcome on {@code flow}. */
    private static void fail(Channel client, Consumer<Outcome> ready, Outcome outcome, Telemetry.Flow flow) {
        LOG.debug("outbound connection from {} failed: {}", client.remoteAddress(), outcome.error().orElse("-"));
        ready.accept(outcome);
        client.close();
        flow.close(outcome);
    }

    @Override
    public void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
    }

    /**
     * What the upstream agent's first frame on a CONNECT stream means: 200 (stream left open) is the
     * tunnel; 401 its policy's denial; another status a failure of that agent; anything that is not
     * a HEADERS frame with a numeric {@code :status}, or a 200 that ends the stream, is not HBONE.
     */
    static Outcome answer(CharSequence authority, Object first) {
        String what = "HBONE CONNECT " + authority;
        if (!(first instanceof Http2HeadersFrame h)) {
            return new Outcome.Malformed(what + " answered with " + first.getClass().getSimpleName()
                    + ", not HEADERS");
        }
        CharSequence status = h.headers().status();
        if (status == null) {
            return new Outcome.Malformed(what + " answered without :status");
        }
        int code;
        try {
            code = Integer.parseInt(status.toString());
        } catch (NumberFormatException e) {
            return new Outcome.Malformed(what + " answered :status '" + status + "'");
        }
        return switch (code) {
            case 200 -> h.isEndStream()
                    ? new Outcome.Malformed(what + " answered 200 and ended the stream")
                    : Outcome.allowed();
            case 401 -> new Outcome.DeniedUpstream(what + " answered 401");
            default -> new Outcome.UpstreamStatus(code, what + " answered " + code);
        };
    }
}
