package dev.wisp.waypoint.proxy;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.Value;
import dev.wisp.base.HostPort;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.proxy.HbonePool;
import dev.wisp.node.proxy.PoolKey;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.HttpConversionUtil;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Sends one request to one endpoint of a cluster and gives back its response: the endpoint is the
 * next of the cluster's load assignment (round robin over the endpoints that carry an HBONE tunnel),
 * reached over a CONNECT stream from the agent's {@link HbonePool} to the endpoint's node, with
 * the waypoint's own SVID as client certificate and the endpoint's SPIFFE ID (or its node agent's) as
 * the accepted server identities. Those streams are kept across requests by the {@link UpstreamPool}:
 * HTTP/1.1 with keep-alive, one request at a time per stream; HTTP/2 as one h2c connection per
 * endpoint, requests multiplexed on it. The response is read whole (at most {@link #MAX_BODY} bytes).
 *
 * <p>Thread-safe: round-robin counters are atomic; everything else is per call, on the stream's loop.
 */
final class Forwarder {
    static final int MAX_BODY = 1 << 20;
    static final int MAX_MIRRORS = 64;
    static final long MIRROR_TIMEOUT_MS = 10_000;
    private final AtomicInteger mirrorsInFlight = new AtomicInteger();
    private final UpstreamPool upstreams;
    private final SpiffeId self;
    private final Map<String, AtomicInteger> roundRobin = new ConcurrentHashMap<>();

    /** @param upstreamIdle how long an upstream connection is kept without a request */
    Forwarder(HbonePool pool, SpiffeId self, MeterRegistry registry, Duration upstreamIdle) {
        this.upstreams = new UpstreamPool(requireNonNull(pool, "pool"), upstreamIdle, registry);
        this.self = requireNonNull(self, "self");
    }

    /**
     * Where a request goes: the endpoint (CONNECT target), its node's HBONE server, and its workload
     * name as the control plane's metadata gives it (for the request series).
     */
    record Endpoint(InetSocketAddress address, PoolKey key, String workload) {}

    /** Why a request could not be sent, with the status the client is answered. */
    static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;
        private final int status;
        private final boolean unsent;

        Failure(int status, String reason) {
            this(status, reason, false);
        }

        /** @param unsent the endpoint never got the request (its tunnel could not be opened): safe to retry */
        Failure(int status, String reason, boolean unsent) {
            super(reason);
            this.status = status;
            this.unsent = unsent;
        }

        int status() {
            return status;
        }

        boolean unsent() {
            return unsent;
        }
    }

    /**
     * The next endpoint of {@code cluster}: 500 when CDS has no such cluster (what the control plane
     * gives an invalid backend), 503 when it has no endpoint with a tunnel.
     */
    Endpoint pick(EnvoyConfig config, String cluster) throws Failure {
        if (!config.clusters().contains(cluster)) {
            throw new Failure(500, "cluster " + cluster + " does not exist");
        }
        List<Endpoint> eps = endpointsOf(config, cluster);
        if (eps.isEmpty()) {
            throw new Failure(503, "cluster " + cluster + " has no endpoint reachable over HBONE");
        }
        int i = roundRobin.computeIfAbsent(cluster, k -> new AtomicInteger()).getAndIncrement();
        return eps.get(Math.floorMod(i, eps.size()));
    }

    /**
     * The endpoints of {@code cluster} in {@code config}, parsed from its load assignment once per
     * configuration (another configuration object starts the table afresh): not per request.
     */
    private List<Endpoint> endpointsOf(EnvoyConfig config, String cluster) {
        Parsed p = parsed;
        if (p.config() != config) {
            p = new Parsed(config, new ConcurrentHashMap<>());
            parsed = p;
        }
        return p.byCluster().computeIfAbsent(cluster, k -> List.copyOf(endpoints(config.endpoints().get(k))));
    }

    /** The endpoints parsed from one configuration, by cluster. */
    private record Parsed(EnvoyConfig config, Map<String, List<Endpoint>> byCluster) {}

    private volatile Parsed parsed = new Parsed(null, Map.of());

    private List<Endpoint> endpoints(ClusterLoadAssignment cla) {
        List<Endpoint> out = new ArrayList<>();
        if (cla == null) {
            return out;
        }
        for (LocalityLbEndpoints l : cla.getEndpointsList()) {
            for (LbEndpoint e : l.getLbEndpointsList()) {
                var tunnel = e.getMetadata().getFilterMetadataMap().get(TUNNEL_METADATA);
                if (tunnel == null) {
                    continue;
                }
                try {
                    Map<String, Value> f = tunnel.getFieldsMap();
                    HostPort node = HostPort.parse(f.get("address").getStringValue());
                    SpiffeId id = SpiffeId.parse(f.get("identity").getStringValue());
                    SpiffeId agent = IdentityProvider.nodeId(id.trustDomain(), f.get("node").getStringValue());
                    SocketAddress a = e.getEndpoint().getAddress().getSocketAddress();
                    out.add(new Endpoint(new InetSocketAddress(InetAddress.ofLiteral(a.getAddress()), a.getPortValue()),
                            new PoolKey(self, List.of(id, agent), new InetSocketAddress(
                                    InetAddress.ofLiteral(node.host()), node.port())),
                            workload(f)));
                } catch (RuntimeException bad) {
                    // An endpoint whose tunnel does not parse is one the waypoint cannot reach: skipped.
                }
            }
        }
        return out;
    }

    private static String workload(Map<String, Value> tunnel) {
        Value w = tunnel.get("workload");
        return w == null ? RequestMetrics.UNKNOWN : w.getStringValue();
    }

    /**
     * Sends {@code request} (released here) to {@code to} on a pooled upstream ({@link UpstreamPool}), as
     * HTTP/2 when {@code h2}, else as HTTP/1.1 with keep-alive, whatever the client spoke; the future gives the response (the caller
     * releases it) or fails with a {@link Failure}: 503 when the tunnel is refused or the endpoint does
     * not answer, 502 when the answer is not HTTP. Cancelling it retires the upstream the request is on.
     */
    Future<FullHttpResponse> send(FullHttpRequest request, Endpoint to, boolean h2, EventExecutor executor) {
        return upstreams.send(request, to, h2, executor);
    }

    /** The pooled upstream connections ({@link StreamedCall} opens its HTTP/2 streams on them). */
    UpstreamPool upstreams() {
        return upstreams;
    }

    /**
     * Sends {@code copy} (released here) to the next endpoint of {@code cluster} and drops the answer
     * (a {@code RequestMirror}): at most {@link #MAX_MIRRORS} copies in flight over the waypoint, each
     * given {@link #MIRROR_TIMEOUT_MS}; a copy over the bound, or to a cluster without endpoints, is
     * not sent.
     *
     * @return whether the copy went out
     */
    boolean mirror(EnvoyConfig config, String cluster, FullHttpRequest copy, boolean h2, EventExecutor executor) {
        Endpoint to;
        try {
            to = pick(config, cluster);
        } catch (Failure e) {
            copy.release();
            return false;
        }
        if (mirrorsInFlight.incrementAndGet() > MAX_MIRRORS) {
            mirrorsInFlight.decrementAndGet();
            copy.release();
            return false;
        }
        Future<FullHttpResponse> answer = send(copy, to, config.upstreamHttp2(cluster, h2), executor);
        var timer = executor.schedule(() -> answer.cancel(false), MIRROR_TIMEOUT_MS,
                java.util.concurrent.TimeUnit.MILLISECONDS);
        answer.addListener((Future<FullHttpResponse> a) -> {
            timer.cancel(false);
            mirrorsInFlight.decrementAndGet();
            if (a.isSuccess()) {
                a.getNow().release();
            }
        });
        return true;
    }

    /**
     * Ends our side of a stream whose answer came (END_STREAM), so that it closes as the endpoint's
     * agent ends its side, rather than with a RST_STREAM: a peer's HTTP/2 server counts resets as a
     * rapid-reset attack (Netty's default: 200 in 30 s), then sends GOAWAY and closes the connection,
     * failing the requests on it. A stream the peer leaves open is reset after {@link #LINGER}.
     */
    static void finish(Http2StreamChannel stream) {
        if (!stream.isActive()) {
            return;
        }
        endOurSide(stream);
        stream.eventLoop().schedule(() -> {
            stream.close();
        }, LINGER.toMillis(), TimeUnit.MILLISECONDS);
    }

    /**
     * Sends END_STREAM on an upstream HBONE stream, from the head of its pipeline: written at the tail, the
     * DATA frame would reach the h2c codec an {@link H2Upstream} has in that pipeline, which takes it for
     * one of its own streams and fails it, so the stream was only ever reset, {@link #LINGER} later.
     */
    static void endOurSide(Http2StreamChannel stream) {
        stream.pipeline().firstContext().writeAndFlush(new DefaultHttp2DataFrame(true));
    }

    /** How long a stream whose answer came may stay open for the endpoint's agent to end its side. */
    static final Duration LINGER = Duration.ofSeconds(10);

    /** The response of one upstream stream. */
    static final class Answer extends SimpleChannelInboundHandler<FullHttpResponse> {
        private final Promise<FullHttpResponse> response;

        Answer(Promise<FullHttpResponse> response) {
            super(false);
            this.response = response;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext c, FullHttpResponse msg) {
            // What Netty's stream codec adds (x-http2-stream-id…): not the endpoint's headers, and an
            // HTTP/1.1 client would be sent them.
            for (HttpConversionUtil.ExtensionHeaderNames n : HttpConversionUtil.ExtensionHeaderNames.values()) {
                msg.headers().remove(n.text());
            }
            if (!msg.decoderResult().isSuccess() || !response.trySuccess(msg)) {
                msg.release();
                response.tryFailure(new Failure(502, "the endpoint's answer is not HTTP: "
                        + msg.decoderResult().cause()));
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
            response.tryFailure(new Failure(503, "the endpoint closed the stream before answering"));
            c.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            response.tryFailure(new Failure(502, "reading the endpoint's answer: " + cause.getMessage()));
            c.close();
        }
    }

    /** The endpoint metadata namespace of the HBONE tunnel (the control plane's {@code EnvoyNames}). */
    static final String TUNNEL_METADATA = "wisp.dev/hbone";

}
