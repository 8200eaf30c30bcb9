package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.spiffe.SpiffeId;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
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
import java.util.function.IntConsumer;
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
        listener = new ServerBootstrap().group(ctx.transport().acceptor, ctx.transport().workers)
                .channel(ctx.transport().serverChannel).option(ChannelOption.SO_BACKLOG, 1024)
                .childOption(ChannelOption.AUTO_READ, false).childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childOption(ChannelOption.TCP_NODELAY, true).childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        Optional<InetSocketAddress> dst = resolver.originalDestination(ch);
                        if (dst.isEmpty()) {
                            LOG.warn("outbound connection from {} closed: its original destination is unknown "
                                    + "(is capture set up for this workload?)", ch.remoteAddress());
                            ch.close();
                            return;
                        }
                        tunnel(ch, (InetSocketAddress) ch.remoteAddress(), dst.get(), status -> {});
                    }
                }).bind(address).syncUninterruptibly().channel();
        return (InetSocketAddress) listener.localAddress();
    }

    /**
     * Carries {@code client} (auto-read off, active) to {@code dst}. {@code ready} runs once, before
     * any byte is relayed, with 200 when the tunnel is up or the failure status (400/401/503, or 502
     * when no route or connection could be made); on failure the client is closed after it.
     */
    public void tunnel(Channel client, InetSocketAddress src, InetSocketAddress dst, IntConsumer ready) {
        tunnel(client, src, dst, ctx.index().workloadByAddress(src.getAddress())
                .filter(w -> w.getNode().equals(ctx.nodeName())), ready);
    }

    /** As {@link #tunnel(Channel, InetSocketAddress, InetSocketAddress, IntConsumer)}, with the source given. */
    public void tunnel(Channel client, InetSocketAddress src, InetSocketAddress dst, Optional<Workload> source,
            IntConsumer ready) {
        if (Hbone.meshPort(dst.getPort(), ctx.agentPorts()) && ctx.index().workloadByAddress(dst.getAddress())
                .map(w -> w.getNode().equals(ctx.nodeName())).orElse(false)) {
            fail(client, ready, 400, "destination " + dst + " is an agent port (loop)", null);
            return;
        }
        Route route;
        try {
            route = Route.of(ctx.index().snapshot(), dst,
                    key -> roundRobin.computeIfAbsent(key, k -> new AtomicInteger()).getAndIncrement(),
                    ctx.hbonePort());
        } catch (Route.NoRouteException e) {
            fail(client, ready, 503, e.getMessage(), null);
            return;
        }
        Optional<SpiffeId> srcId = source.map(IdentityProvider::workloadId);
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
            fail(client, ready, 401, "source " + src + " is not a workload of node " + ctx.nodeName()
                    + ": no identity to present", flow);
            return;
        }
        PoolKey key = new PoolKey(srcId.get(), route.expectedIdentities(), route.connectTo());
        Http2Headers headers = new DefaultHttp2Headers().method("CONNECT").authority(Hbone.authority(route.target()))
                .add("forwarded", "for=\"" + Hbone.authority(forwardedFor(src, source.get())) + "\"");
        ConnectRequest request = new ConnectRequest(client, headers, flow, ready);
        pool.open(key, new ChannelInitializer<Http2StreamChannel>() {
            @Override
            protected void initChannel(Http2StreamChannel stream) {
                stream.pipeline().addLast("connect", request);
            }
        }, client.eventLoop().newPromise()).addListener((Future<Http2StreamChannel> f) -> {
            if (!f.isSuccess()) {
                fail(client, ready, 503, f.cause().getMessage(), flow);
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

    private void direct(Channel client, Route route, Telemetry.Flow flow, IntConsumer ready) {
        new Bootstrap().group(client.eventLoop()).channel(ctx.transport().socketChannel)
                .option(ChannelOption.AUTO_READ, false).option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .option(ChannelOption.TCP_NODELAY, true)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) ctx.connectTimeout().toMillis())
                .handler(new ChannelInboundHandlerAdapter()).connect(route.connectTo())
                .addListener((ChannelFutureListener) f -> {
                    if (!f.isSuccess()) {
                        fail(client, ready, 503, "connection to " + route.connectTo() + " failed: "
                                + f.cause().getMessage(), flow);
                        return;
                    }
                    if (!client.isActive()) {
                        f.channel().close();
                        flow.close("client closed before the connection was up");
                        return;
                    }
                    ready.accept(200);
                    Relay.join(client, f.channel(), Relay.counting(flow::toServer, flow::toClient, flow::close));
                });
    }

    private static void fail(Channel client, IntConsumer ready, int status, String reason, Telemetry.Flow flow) {
        LOG.debug("outbound connection from {} failed ({}): {}", client.remoteAddress(), status, reason);
        ready.accept(status);
        client.close();
        if (flow != null) {
            flow.close((status == 401 || status == 400 || status == 503 ? "HBONE " + status + ": " : "") + reason);
        }
    }

    @Override
    public void close() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
    }

    /**
     * On a new HBONE stream: sends CONNECT, waits for the response; on 200 joins the relay (frames
     * that follow the 200 in the same read are replayed into it), otherwise fails the client.
     */
    private static final class ConnectRequest extends ChannelInboundHandlerAdapter {
        private final Channel client;
        private final Http2Headers headers;
        private final Telemetry.Flow flow;
        private final IntConsumer ready;
        /** Stream's event loop only. */
        private boolean answered;
        private final ArrayDeque<Object> held = new ArrayDeque<>();

        ConnectRequest(Channel client, Http2Headers headers, Telemetry.Flow flow, IntConsumer ready) {
            this.client = client;
            this.headers = headers;
            this.flow = flow;
            this.ready = ready;
        }

        @Override
        public void channelActive(ChannelHandlerContext c) {
            c.channel().config().setAutoRead(false);
            c.writeAndFlush(new DefaultHttp2HeadersFrame(headers, false));
            c.read();
            c.fireChannelActive();
        }

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            if (answered) {
                held.add(msg);
                return;
            }
            if (!(msg instanceof Http2HeadersFrame h)) {
                ReferenceCountUtil.release(msg);
                answered = true;
                c.close();
                fail(client, ready, 503, "HBONE stream answered without headers", flow);
                return;
            }
            answered = true;
            CharSequence status = h.headers().status();
            if (status == null || !"200".contentEquals(status) || h.isEndStream()) {
                c.close();
                int code = status == null ? 502 : parse(status);
                fail(client, ready, code, "HBONE CONNECT " + headers.authority() + " answered " + status, flow);
                return;
            }
            if (!client.isActive()) {
                c.close();
                flow.close("client closed before the tunnel was up");
                return;
            }
            ready.accept(200);
            Http2StreamChannel stream = (Http2StreamChannel) c.channel();
            c.pipeline().remove(this);
            Relay.join(client, stream, Relay.counting(flow::toServer, flow::toClient, flow::close));
            while (!held.isEmpty()) {
                stream.pipeline().fireChannelRead(held.poll());
            }
        }

        private static int parse(CharSequence status) {
            try {
                return Integer.parseInt(status.toString());
            } catch (NumberFormatException e) {
                return 502;
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
            while (!held.isEmpty()) {
                ReferenceCountUtil.release(held.poll());
            }
            if (!answered) {
                answered = true;
                fail(client, ready, 503, "HBONE stream closed before an answer", flow);
            }
            c.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            c.close();
        }
    }
}
