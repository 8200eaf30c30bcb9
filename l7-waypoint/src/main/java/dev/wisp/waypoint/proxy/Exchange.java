package dev.wisp.waypoint.proxy;

import dev.wisp.node.proxy.StreamBytes;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.waypoint.authz.AuthzRequest;
import dev.wisp.waypoint.authz.RequestGate;
import dev.wisp.waypoint.route.EnvoyRoutes;
import dev.wisp.waypoint.route.EnvoyRoutes.Decision;
import dev.wisp.waypoint.route.Faults;
import dev.wisp.waypoint.route.RateLimits;
import dev.wisp.waypoint.route.RouteActions;
import dev.wisp.waypoint.route.RouteFilters;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.HttpConversionUtil;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP/1.1 requests of one tunnel, one at a time (reading stops while a request is out, so
 * pipelined requests wait their turn and memory stays one request), or the one request of an HTTP/2
 * stream inside a tunnel (as {@link InnerProtocol} gives it, an HTTP/1.1 message; it goes upstream as
 * HTTP/2, trailers kept): each is routed on the virtual
 * host of the tunnel's target ({@link EnvoyRoutes}), answered by the waypoint (404 no route, the
 * route's direct response or redirect, 500/503 from {@link Forwarder#pick}, the abort of the fault the
 * route injects ({@link Faults}, whose delay holds the request first), 429 when the route's token
 * bucket is empty ({@link RateLimits})) or, rewritten by the
 * route ({@link RouteActions}: path, host, request headers), copied to its mirrors and sent to the
 * cluster's endpoints by {@link Attempts} (retries, per-try and request timeouts: 504), the answer's
 * headers edited by the route. One access-log line per request (logger {@code wisp.access}, with the
 * number of attempts) and one observation of the Istio request series ({@link
 * RequestMetrics}). A gRPC request ({@link Grpc#is}) the waypoint answers itself gets a trailers-only
 * gRPC answer, and is counted with its gRPC status. {@code connection: close} from the client, or a request
 * that does not parse (400), ends the tunnel after the answer.
 *
 * <p>A gRPC call on an HTTP/2 stream comes as its head, then its body's parts ({@link InnerProtocol}
 * aggregates nothing for it): it is authorized and routed by the head, then relayed message by
 * message by a {@link StreamedCall} (its own retry and timeout rules; not mirrored).
 */
final class Exchange extends SimpleChannelInboundHandler<HttpObject> {
    private static final Logger ACCESS = LoggerFactory.getLogger("wisp.access");
    private static final Set<String> HOP_BY_HOP = Set.of("connection", "keep-alive", "proxy-connection", "upgrade",
            "http2-settings");
    private final InetSocketAddress target;
    private final Optional<SpiffeId> peer;
    private final Routing routing;
    private final boolean h2;
    // The request being answered (one at a time): what its metrics are labelled and sized by.
    /**
     * The request's virtual host, null until it is routed to one: its name labels the metrics, and it
     * names the request's {@code host} when the client gave none ({@link Authorities}).
     */
    private VirtualHost virtualHost;
    private Optional<RequestMetrics.Upstream> upstream = Optional.empty();
    private long requestBytes;
    private boolean grpc;
    private String grpcStatus;
    /** The gRPC call being relayed on this HTTP/2 stream, once routed. */
    private StreamedCall call;
    /** Whether a gRPC call's head waits (an authorizer's answer, a route's injected delay): its parts are held. */
    private boolean holding;
    /**
     * The parts of a gRPC call that came while {@code holding}; null until one came, so a call relayed
     * at once allocates nothing here.
     */
    private List<HttpContent> held;

    /**
     * A request routed to a cluster: the decision, the configuration it was made on, whether the tunnel
     * stays, the fault its route injects.
     */
    private record Routed(Decision.Forward forward, EnvoyConfig config, boolean keepAlive, Faults.Injected fault) {}

    Exchange(InetSocketAddress target, Optional<SpiffeId> peer, Routing routing) {
        this(target, peer, routing, false);
    }

    /**
     * @param h2 the request comes on an HTTP/2 stream of its own, and goes upstream as HTTP/2 unless its
     *     cluster says HTTP/1.1 ({@link EnvoyConfig#upstreamHttp2})
     */
    Exchange(InetSocketAddress target, Optional<SpiffeId> peer, Routing routing, boolean h2) {
        super(false);
        this.target = target;
        this.peer = peer;
        this.routing = routing;
        this.h2 = h2;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext c, HttpObject msg) {
        switch (msg) {
            case FullHttpRequest req -> whole(c, req);
            case HttpRequest head -> streamed(c, head);
            case HttpContent part when call != null -> call.request(part);
            case HttpContent part when holding -> hold(part);
            default -> ReferenceCountUtil.release(msg); // the rest of a call the waypoint answered itself
        }
    }

    private void whole(ChannelHandlerContext c, FullHttpRequest req) {
        long start = System.nanoTime();
        requestBytes = req.content().readableBytes();
        route(c, req, start, r -> {
            if (r == null) {
                req.release();
                return;
            }
            inject(c, req, r, start, () -> forward(c, req, r.forward(), r.config(), start, r.keepAlive()),
                    req::release);
        });
    }

    /**
     * Applies the route's injected fault ({@link Faults}): after its delay (reading paused), {@code go}
     * forwards the request, or its abort answers it and {@code drop} frees what was held; {@code drop}
     * too when the client left while the request was held.
     */
    private void inject(ChannelHandlerContext c, HttpRequest req, Routed r, long start, Runnable go, Runnable drop) {
        Faults.Injected fault = r.fault();
        Runnable next = () -> {
            if (!c.channel().isActive()) {
                drop.run();
            } else if (fault.aborted()) {
                drop.run();
                respond(c, req.method().name(), req.uri(), fault.abortStatus(), fault.grpcStatus(),
                        "aborted by the route's fault filter", r.forward().route(), null, start, r.keepAlive(), 0);
            } else {
                go.run();
            }
        };
        if (fault.delayed()) {
            c.channel().config().setAutoRead(false);
            c.executor().schedule(next, fault.delay().toNanos(), TimeUnit.NANOSECONDS);
        } else {
            next.run();
        }
    }

    /**
     * A gRPC call's head: routed as a whole request is, then relayed by a {@link StreamedCall}; its parts
     * that come meanwhile (an external authorizer's answer, a route's injected delay) are held.
     */
    private void streamed(ChannelHandlerContext c, HttpRequest head) {
        long start = System.nanoTime();
        requestBytes = 0;
        holding = true;
        Runnable drop = () -> {
            holding = false;
            if (held != null) {
                held.forEach(HttpContent::release);
                held = null;
            }
        };
        route(c, head, start, routed -> {
            if (routed == null) {
                drop.run();
                return;
            }
            inject(c, head, routed, start, () -> {
                List<HttpContent> parts = held;
                holding = false;
                held = null;
                relay(c, head, routed, start);
                if (parts != null) {
                    parts.forEach(call::request);
                }
            }, drop);
        });
    }

    private void hold(HttpContent part) {
        if (held == null) {
            held = new ArrayList<>(4);
        }
        held.add(part);
    }

    /** Relays a routed gRPC call by a {@link StreamedCall}. */
    private void relay(ChannelHandlerContext c, HttpRequest head, Routed routed, long start) {
        Decision.Forward f = routed.forward();
        String method = head.method().name();
        String uri = head.uri();
        RouteActions.Upstream u = f.upstream();
        HttpRequest up = new DefaultHttpRequest(HttpVersion.HTTP_1_1, head.method(), u.path());
        u.headers().forEach((name, values) -> up.headers().add(name, values));
        call = StreamedCall.start(new ClusterTries(routing.forwarder(), routed.config(), f), up, c,
                new StreamedCall.Events() {
                    @Override
                    public void refused(Attempts.Result a) {
                        upstream = upstreamOf(a);
                        respond(c, method, uri, a.status(), a.reason(), f.route(), a.where(), start, true,
                                a.attempts());
                    }

                    @Override
                    public void began(HttpResponse r, Attempts.Result a) {
                        upstream = upstreamOf(a);
                        r.headers().remove(HttpHeaderNames.CONNECTION).remove(HttpHeaderNames.KEEP_ALIVE);
                        HttpHeaders h = r.headers();
                        RouteActions.response(f.matched(), f.backend(),
                                new RouteActions.Headers(h::set, h::add, h::remove, h::contains));
                    }

                    @Override
                    public void ended(int status, String grpcStatus, long requestBytes, long responseBytes,
                            Attempts.Result a) {
                        Exchange.this.requestBytes = requestBytes;
                        Exchange.this.grpcStatus = grpcStatus;
                        log(method, uri, status, a.reason(), f.route(), a.where(), start, responseBytes, a.attempts());
                    }
                });
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext c) {
        if (call != null) {
            call.clientWritable();
        }
        c.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext c) {
        if (call != null) {
            call.clientGone();
        }
        c.fireChannelInactive();
    }

    /**
     * Authorizes and routes a request by its head, then hands {@code then} where it goes, or null when it
     * was answered here (or the client left while the external authorizer was asked); the caller owns the
     * request's body. An authorizer's answer is awaited with reading paused, and taken on the stream's
     * event loop.
     */
    private void route(ChannelHandlerContext c, HttpRequest req, long start, Consumer<Routed> then) {
        virtualHost = null;
        upstream = Optional.empty();
        grpc = Grpc.is(req.headers());
        grpcStatus = null;
        if (h2) {
            // What Netty's stream codec adds: the stream's number and scheme are not the client's headers.
            req.headers().remove(HttpConversionUtil.ExtensionHeaderNames.STREAM_ID.text()).remove(
                    HttpConversionUtil.ExtensionHeaderNames.SCHEME.text());
        }
        boolean keepAlive = HttpUtil.isKeepAlive(req) && req.decoderResult().isSuccess();
        String uri = req.uri();
        int q = uri.indexOf('?');
        String path = q < 0 ? uri : uri.substring(0, q);
        if (!req.decoderResult().isSuccess() || !path.startsWith("/")) {
            respond(c, req.method().name(), uri, 400, "request does not parse", null, null, start, false);
            then.accept(null);
            return;
        }
        EnvoyConfig now = routing.config().get();
        Optional<VirtualHost> host = now.virtualHost(target);
        if (host.isEmpty()) {
            respond(c, req.method().name(), uri, 503, "no route configuration serves " + target, null, null, start,
                    keepAlive);
            then.accept(null);
            return;
        }
        virtualHost = host.get();
        EnvoyRoutes.Request http = http(req);
        CompletableFuture<RequestGate.Outcome> gate = RequestGate.check(host.get(), new AuthzRequest(http, peer,
                source(c), target, Map.of()), routing.authorizers().flatMap(a -> a.bind(now, target)));
        if (gate.isDone()) {
            then.accept(decide(c, req, http, start, keepAlive, now, host.get(), gate.join()));
            return;
        }
        c.channel().config().setAutoRead(false);
        gate.thenAccept(o -> c.executor().execute(() -> then.accept(c.channel().isActive()
                ? decide(c, req, http, start, keepAlive, now, host.get(), o)
                : null)));
    }

    /** The gate's {@code outcome} applied: the refusal answered (null), or the request routed. */
    private Routed decide(ChannelHandlerContext c, HttpRequest req, EnvoyRoutes.Request http, long start,
            boolean keepAlive, EnvoyConfig now, VirtualHost host, RequestGate.Outcome outcome) {
        String uri = req.uri();
        if (outcome.refusal().isPresent()) {
            refuse(c, req, outcome.refusal().get(), start, keepAlive);
            return null;
        }
        if (outcome.edits() != null) {
            HttpHeaders h = req.headers();
            outcome.edits().applyTo(new RouteActions.Headers(h::set, h::add, h::remove, h::contains));
        }
        // Routed on the request as the gate left it: read again only when an authorizer edited its headers.
        Decision d = EnvoyRoutes.decide(host, outcome.edits() != null ? http(req) : http, ThreadLocalRandom.current()
                .nextDouble());
        switch (d) {
            case Decision.Respond r -> {
                respond(c, req.method().name(), uri, r.status(), r.reason(), r.route(), null, start, keepAlive);
            }
            case Decision.Redirect r -> {
                FullHttpResponse answer = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1,
                        HttpResponseStatus.valueOf(r.status()));
                answer.headers().set(HttpHeaderNames.LOCATION, r.location());
                log(req.method().name(), uri, r.status(), "redirected to " + r.location(), r.route(), null, start, 0,
                        0);
                write(c, answer, keepAlive);
            }
            case Decision.Forward f -> {
                RouteFilters.Resolved filters = routing.filters().table(now, now.routes().values()).of(f.matched());
                RateLimits.Outcome limit = routing.rateLimits().take(host.getName(), filters.rateLimit(),
                        ThreadLocalRandom.current().nextDouble());
                if (limit.limited()) {
                    // Envoy's local rate limit answer, before any fault of the route is drawn.
                    routing.metrics().rateLimited(limit.rule(), host.getName());
                    respond(c, req.method().name(), uri, 429, "local_rate_limited", f.route(), null, start, keepAlive);
                    return null;
                }
                Faults.Injected fault = Faults.draw(filters.fault(), ThreadLocalRandom.current());
                if (fault.delayed()) {
                    routing.metrics().fault("delay", host.getName());
                }
                if (fault.aborted()) {
                    routing.metrics().fault("abort", host.getName());
                }
                return new Routed(f, now, keepAlive, fault);
            }
        }
        return null;
    }

    /** The request as routing and authorization see it: method, path, query and headers. */
    private EnvoyRoutes.Request http(HttpRequest req) {
        String uri = req.uri();
        int q = uri.indexOf('?');
        return new EnvoyRoutes.Request(req.method().name(), q < 0 ? uri : uri.substring(0, q),
                q < 0 ? "" : uri.substring(q + 1), headers(req));
    }

    /** Answers a request the gate refused: the refusal's body when it has one (an authorizer's), else its reason. */
    private void refuse(ChannelHandlerContext c, HttpRequest req, RequestGate.Refusal x, long start,
            boolean keepAlive) {
        if (x.body() == null || grpc) {
            respond(c, req.method().name(), req.uri(), x.status(), x.reason(), null, null, start, keepAlive);
            return;
        }
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(x.status()),
                Unpooled.copiedBuffer(x.body(), StandardCharsets.UTF_8));
        log(req.method().name(), req.uri(), x.status(), x.reason(), null, null, start, r.content().readableBytes(), 0);
        write(c, r, keepAlive);
    }

    private void forward(ChannelHandlerContext c, FullHttpRequest req, Decision.Forward f, EnvoyConfig now,
            long start, boolean keepAlive) {
        String method = req.method().name();
        String uri = req.uri();
        FullHttpRequest upstreamRequest = rewritten(req, f.upstream());
        for (String mirror : RouteActions.mirrors(f.action(), ThreadLocalRandom.current()::nextDouble)) {
            routing.forwarder().mirror(now, mirror, upstreamRequest.retainedDuplicate(), h2, c.executor());
        }
        c.channel().config().setAutoRead(false);
        Attempts.run(new ClusterTries(routing.forwarder(), now, f),
                upstreamRequest, h2, c.executor())
                .addListener((Future<Attempts.Result> done) -> {
                    Attempts.Result a = done.getNow();
                    upstream = upstreamOf(a);
                    if (a.response() == null) {
                        respond(c, method, uri, a.status(), a.reason(), f.route(), a.where(), start, keepAlive,
                                a.attempts());
                        return;
                    }
                    FullHttpResponse r = a.response();
                    grpcStatus = grpc ? Grpc.status(r) : null;
                    r.headers().remove(HttpHeaderNames.CONNECTION).remove(HttpHeaderNames.KEEP_ALIVE);
                    HttpHeaders h = r.headers();
                    RouteActions.response(f.matched(), f.backend(),
                            new RouteActions.Headers(h::set, h::add, h::remove, h::contains));
                    log(method, uri, r.status().code(), "forwarded", f.route(), a.where(), start,
                            r.content().readableBytes(), a.attempts());
                    write(c, r, keepAlive);
                });
    }

    /** The endpoint an answer came from, as the request series label it. */
    private static Optional<RequestMetrics.Upstream> upstreamOf(Attempts.Result a) {
        return a.endpoint() == null
                ? Optional.empty()
                : Optional.of(new RequestMetrics.Upstream(a.endpoint().key().destinationIdentities().getFirst(),
                        a.endpoint().workload()));
    }

    /** The tunnel's TCP peer (the HBONE connection under this stream); 0.0.0.0 when it has none. */
    private static InetAddress source(ChannelHandlerContext c) {
        Channel conn = c.channel().parent() != null ? c.channel().parent() : c.channel();
        return conn.remoteAddress() instanceof InetSocketAddress a && a.getAddress() != null
                ? a.getAddress()
                : InetAddress.ofLiteral("0.0.0.0");
    }

    /** The request as the route sends it upstream: its path and headers rewritten, the body kept. */
    private static FullHttpRequest rewritten(FullHttpRequest req, RouteActions.Upstream u) {
        FullHttpRequest out = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, req.method(), u.path(), req.content());
        out.trailingHeaders().set(req.trailingHeaders());
        u.headers().forEach((name, values) -> out.headers().add(name, values));
        HttpUtil.setContentLength(out, out.content().readableBytes());
        return out;
    }

    /** The request's headers by lower-case name, in order; {@code host} the service's when the client sent none. */
    private Map<String, List<String>> headers(HttpRequest req) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        Set<String> hop = hopByHop(req.headers());
        for (Map.Entry<String, String> h : req.headers()) {
            String name = h.getKey().toLowerCase(Locale.ROOT);
            if (!hop.contains(name)) {
                out.computeIfAbsent(name, k -> new ArrayList<>()).add(h.getValue());
            }
        }
        if (!out.containsKey("host")) { // rare: worked out only then
            out.put("host", List.of(Authorities.of(virtualHost, target)));
        }
        return out;
    }

    /**
     * The headers of one hop (RFC 9110 section 7.6.1) that are neither routed on nor passed on:
     * {@code connection} and the names it lists, {@code keep-alive}, {@code proxy-connection}, and an
     * upgrade offer's {@code upgrade} and {@code http2-settings}. So {@code Upgrade: h2c} is declined:
     * the request is served as the HTTP/1.1 it is (no 101), and the endpoint never sees the offer, which
     * it could take and switch to HTTP/2 under the waypoint's HTTP/1.1 client. ({@code te} stays: gRPC's
     * {@code te: trailers}.)
     */
    static Set<String> hopByHop(HttpHeaders headers) {
        if (!headers.contains(HttpHeaderNames.CONNECTION)) {
            return HOP_BY_HOP; // the usual request: no set built for it
        }
        Set<String> out = new HashSet<>(HOP_BY_HOP);
        for (String listed : headers.getAll(HttpHeaderNames.CONNECTION)) {
            for (String name : listed.split(",")) {
                String n = name.strip().toLowerCase(Locale.ROOT);
                if (!n.isEmpty() && !n.equals("te")) {
                    out.add(n);
                }
            }
        }
        return out;
    }

    private void respond(ChannelHandlerContext c, String method, String uri, int status, String reason, String route,
            String where, long start, boolean keepAlive) {
        respond(c, method, uri, status, reason, route, where, start, keepAlive, 0);
    }

    private void respond(ChannelHandlerContext c, String method, String uri, int status, String reason, String route,
            String where, long start, boolean keepAlive, int attempts) {
        respond(c, method, uri, status, -1, reason, route, where, start, keepAlive, attempts);
    }

    /**
     * The waypoint's own answer: {@code status} with {@code reason} as text, or to a gRPC call the
     * trailers-only {@code grpcCode} (when not -1, else the status's gRPC code).
     */
    private void respond(ChannelHandlerContext c, String method, String uri, int status, int grpcCode, String reason,
            String route, String where, long start, boolean keepAlive, int attempts) {
        if (grpc) {
            FullHttpResponse r = grpcCode >= 0 ? Grpc.answerStatus(grpcCode, reason) : Grpc.answer(status, reason);
            grpcStatus = r.headers().get(Grpc.STATUS);
            log(method, uri, r.status().code(), reason, route, where, start, 0, attempts);
            write(c, r, keepAlive);
            return;
        }
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(status),
                Unpooled.copiedBuffer(reason + "\n", StandardCharsets.UTF_8));
        log(method, uri, status, reason, route, where, start, r.content().readableBytes(), attempts);
        r.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.TEXT_PLAIN);
        write(c, r, keepAlive);
    }

    private void write(ChannelHandlerContext c, FullHttpResponse r, boolean keepAlive) {
        if (!grpc || !h2) {
            // HTTP/1.1 needs the length to delimit the answer; a trailers-only HTTP/2 answer is one HEADERS frame.
            HttpUtil.setContentLength(r, r.content().readableBytes());
        }
        // An HTTP/2 stream ends with its answer, whatever the request said.
        if (!keepAlive && !h2) {
            r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            c.writeAndFlush(r).addListener(x -> StreamBytes.end(c.channel()).addListener(y -> c.close()));
            return;
        }
        c.writeAndFlush(r, c.voidPromise()); // a failed write closes the tunnel (exceptionCaught)
        c.channel().config().setAutoRead(true);
    }

    private void log(String method, String uri, int status, String reason, String route, String where, long start,
            long responseBytes, int attempts) {
        routing.metrics()
                .record(new RequestMetrics.Request(peer, virtualHost == null ? null : virtualHost.getName(), upstream,
                        status, requestBytes, responseBytes,
                        System.nanoTime() - start, grpcStatus));
        if (!ACCESS.isInfoEnabled()) {
            return;
        }
        // Built by hand, not by the logger's "{}" formatting: one line per request is on the hot path.
        StringBuilder b = new StringBuilder(256).append("request src.identity=\"").append(peer.isPresent()
                ? peer
                        .get().toString()
                : "-").append("\" dst=").append(target).append(" protocol=").append(h2
                        ? "HTTP/2"
                        : "HTTP/1.1")
                .append(" method=").append(method).append(" path=\"");
        printable(b, uri);
        b.append("\" status=").append(status).append(" grpc_status=").append(grpcStatus == null ? "-" : grpcStatus)
                .append(" route=").append(route == null ? "-" : route).append(" upstream=\"").append(where == null
                        ? "-"
                        : where)
                .append("\" reason=\"").append(reason).append("\" attempts=").append(attempts)
                .append(" duration_ms=").append(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
        ACCESS.info(b.toString());
    }

    /** The client's text as a log value: quotes, backslashes and controls escaped, at most 200 characters. */
    private static void printable(StringBuilder b, String s) {
        for (int i = 0; i < Math.min(s.length(), 200); i++) {
            char ch = s.charAt(i);
            if (ch == '"' || ch == '\\' || ch < 0x20 || ch > 0x7e) {
                int v = ch & 0xff;
                b.append('%').append(HEX[v >> 4]).append(HEX[v & 0xf]);
            } else {
                b.append(ch);
            }
        }
    }

    private static final char[] HEX = "0123456789ABCDEF".toCharArray();

    @Override
    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
        c.close();
    }
}
