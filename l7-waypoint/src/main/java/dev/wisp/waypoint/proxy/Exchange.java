package dev.wisp.waypoint.proxy;

import dev.wisp.node.proxy.StreamBytes;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.waypoint.authz.AuthzRequest;
import dev.wisp.waypoint.authz.RequestGate;
import dev.wisp.waypoint.route.EnvoyRoutes;
import dev.wisp.waypoint.route.EnvoyRoutes.Decision;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP/1.1 requests of one tunnel, one at a time (reading stops while a request is out, so
 * pipelined requests wait their turn and memory stays one request): each is routed on the virtual
 * host of the tunnel's target ({@link EnvoyRoutes}), answered by the waypoint (404 no route, the
 * route's direct response, 500/503 from {@link Forwarder#pick}) or sent to the chosen endpoint with
 * the route's timeout (504 when it passes; none when the route's timeout is 0). One access-log line
 * per request (logger {@code wisp.access}) and one observation of the Istio request series ({@link
 * RequestMetrics}). {@code connection: close} from the client, or a request
 * that does not parse (400), ends the tunnel after the answer.
 */
final class Exchange extends SimpleChannelInboundHandler<FullHttpRequest> {
    private static final Logger ACCESS = LoggerFactory.getLogger("wisp.access");
    private final InetSocketAddress target;
    private final Optional<SpiffeId> peer;
    private final java.util.function.Supplier<EnvoyConfig> config;
    private final Forwarder forwarder;
    private final RequestMetrics metrics;
    // The request being answered (one at a time): what its metrics are labelled and sized by.
    private String virtualHost;
    private Optional<SpiffeId> upstream = Optional.empty();
    private long requestBytes;

    Exchange(InetSocketAddress target, Optional<SpiffeId> peer, java.util.function.Supplier<EnvoyConfig> config,
            Forwarder forwarder, RequestMetrics metrics) {
        super(false);
        this.target = target;
        this.peer = peer;
        this.config = config;
        this.forwarder = forwarder;
        this.metrics = metrics;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext c, FullHttpRequest req) {
        long start = System.nanoTime();
        virtualHost = null;
        upstream = Optional.empty();
        requestBytes = req.content().readableBytes();
        boolean keepAlive = HttpUtil.isKeepAlive(req) && req.decoderResult().isSuccess();
        String uri = req.uri();
        int q = uri.indexOf('?');
        String path = q < 0 ? uri : uri.substring(0, q);
        if (!req.decoderResult().isSuccess() || !path.startsWith("/")) {
            req.release();
            respond(c, req.method().name(), uri, 400, "request does not parse", null, null, start, false);
            return;
        }
        EnvoyConfig now = config.get();
        Optional<VirtualHost> host = now.virtualHost(target);
        if (host.isEmpty()) {
            req.release();
            respond(c, req.method().name(), uri, 503, "no route configuration serves " + target, null, null, start,
                    keepAlive);
            return;
        }
        virtualHost = host.get().getName();
        EnvoyRoutes.Request http = new EnvoyRoutes.Request(req.method().name(), path,
                q < 0 ? "" : uri.substring(q + 1), headers(req));
        Optional<RequestGate.Refusal> refused = RequestGate.check(host.get(),
                new AuthzRequest(http, peer, source(c), target, Map.of()));
        if (refused.isPresent()) {
            req.release();
            respond(c, req.method().name(), uri, refused.get().status(), refused.get().reason(), null, null, start,
                    keepAlive);
            return;
        }
        Decision d = EnvoyRoutes.decide(host.get(), http, ThreadLocalRandom.current().nextDouble());
        switch (d) {
            case Decision.Respond r -> {
                req.release();
                respond(c, req.method().name(), uri, r.status(), r.reason(), r.route(), null, start, keepAlive);
            }
            case Decision.Forward f -> forward(c, req, f, now, start, keepAlive);
        }
    }

    private void forward(ChannelHandlerContext c, FullHttpRequest req, Decision.Forward f, EnvoyConfig now,
            long start, boolean keepAlive) {
        String method = req.method().name();
        String uri = req.uri();
        Forwarder.Endpoint to;
        try {
            to = forwarder.pick(now, f.cluster());
        } catch (Forwarder.Failure e) {
            req.release();
            respond(c, method, uri, e.status(), e.getMessage(), f.route(), f.cluster(), start, keepAlive);
            return;
        }
        upstream = Optional.of(to.key().destinationIdentities().getFirst());
        c.channel().config().setAutoRead(false);
        Future<FullHttpResponse> answer = forwarder.send(req, to, c.executor());
        long timeoutMs = f.action().hasTimeout()
                ? f.action().getTimeout().getSeconds() * 1000
                        + f.action().getTimeout().getNanos() / 1_000_000
                : 0;
        ScheduledFuture<?> timer = timeoutMs == 0
                ? null
                : c.executor().schedule(() -> answer.cancel(false),
                        timeoutMs, TimeUnit.MILLISECONDS);
        answer.addListener((Future<FullHttpResponse> a) -> {
            if (timer != null) {
                timer.cancel(false);
            }
            String where = f.cluster() + " " + to.address();
            if (a.isCancelled()) {
                respond(c, method, uri, 504, "no answer within " + timeoutMs + " ms", f.route(), where, start,
                        keepAlive);
                return;
            }
            if (!a.isSuccess()) {
                int status = a.cause() instanceof Forwarder.Failure e ? e.status() : 503;
                respond(c, method, uri, status, a.cause().getMessage(), f.route(), where, start, keepAlive);
                return;
            }
            FullHttpResponse r = a.getNow();
            r.headers().remove(HttpHeaderNames.CONNECTION).remove(HttpHeaderNames.KEEP_ALIVE);
            log(method, uri, r.status().code(), "forwarded", f.route(), where, start, r.content().readableBytes());
            write(c, r, keepAlive);
        });
    }

    /** The tunnel's TCP peer (the HBONE connection under this stream); 0.0.0.0 when it has none. */
    private static InetAddress source(ChannelHandlerContext c) {
        Channel conn = c.channel().parent() != null ? c.channel().parent() : c.channel();
        return conn.remoteAddress() instanceof InetSocketAddress a && a.getAddress() != null
                ? a.getAddress()
                : InetAddress.ofLiteral("0.0.0.0");
    }

    private static Map<String, List<String>> headers(FullHttpRequest req) {
        Map<String, List<String>> out = new HashMap<>();
        for (Map.Entry<String, String> h : req.headers()) {
            out.computeIfAbsent(h.getKey().toLowerCase(Locale.ROOT), k -> new ArrayList<>()).add(h.getValue());
        }
        return out;
    }

    private void respond(ChannelHandlerContext c, String method, String uri, int status, String reason, String route,
            String where, long start, boolean keepAlive) {
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(status),
                Unpooled.copiedBuffer(reason + "\n", StandardCharsets.UTF_8));
        log(method, uri, status, reason, route, where, start, r.content().readableBytes());
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.TEXT_PLAIN);
        write(c, r, keepAlive);
    }

    private static void write(ChannelHandlerContext c, FullHttpResponse r, boolean keepAlive) {
        HttpUtil.setContentLength(r, r.content().readableBytes());
        if (!keepAlive) {
            r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            c.writeAndFlush(r).addListener(x -> StreamBytes.end(c.channel()).addListener(y -> c.close()));
            return;
        }
        c.writeAndFlush(r);
        c.channel().config().setAutoRead(true);
    }

    private void log(String method, String uri, int status, String reason, String route, String where, long start,
            long responseBytes) {
        metrics.record(new RequestMetrics.Request(peer, virtualHost, upstream, status, requestBytes, responseBytes,
                System.nanoTime() - start));
        ACCESS.info("request src.identity=\"{}\" dst={} method={} path=\"{}\" status={} route={} upstream=\"{}\" "
                + "reason=\"{}\" duration_ms={}", peer.map(SpiffeId::toString).orElse("-"), target, method,
                printable(uri),
                status, route == null ? "-" : route, where == null ? "-" : where, reason,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    }

    /** The client's text as a log value: quotes, backslashes and controls escaped, at most 200 characters. */
    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < Math.min(s.length(), 200); i++) {
            char ch = s.charAt(i);
            b.append(ch == '"' || ch == '\\' || ch < 0x20 || ch > 0x7e ? String.format("%%%02X", (int) ch & 0xff) : ch);
        }
        return b.toString();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
        c.close();
    }
}
