package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.waypoint.route.RateLimits;
import dev.wisp.waypoint.route.RateLimitsTest;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpVersion;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A route's local rate limit through the waypoint's request path ({@link Exchange} on an embedded
 * channel): with the bucket empty a request is answered 429 (a gRPC call UNAVAILABLE, as Envoy maps
 * 429) without a forwarder (there is none here: reaching one would fail the test), and counted in the
 * Istio series and {@code wisp_waypoint_rate_limited_total}.
 */
class ExchangeRateLimitTest {
    static final String HOST = ExchangeFaultTest.HOST;
    static final String RULE = "HTTPRoute/default/limited/rule/0";
    /** Every request to {@link #HOST} takes from a bucket of one token that comes back once an hour. */
    static final EnvoyConfig CONFIG = new EnvoyConfig(Map.of(HOST, RouteConfiguration.newBuilder().setName(HOST)
            .addVirtualHosts(VirtualHost.newBuilder().setName(HOST).addDomains("10.96.0.10:8080")
                    .addRoutes(RateLimitsTest.route(RULE, 1, 1, Duration.ofHours(1)).toBuilder()
                            .setMatch(RouteMatch.newBuilder().setPrefix("/")).setRoute(RouteAction.newBuilder()
                                    .setCluster("outbound|8080||server.default.svc.cluster.local"))))
            .build()), Set.of(), Map.of());

    @Test
    void anEmptyBucketAnswers429WithoutContactingABackendAndCountsIt() {
        Telemetry telemetry = new Telemetry();
        Routing routing = new Routing(() -> CONFIG, null, new RequestMetrics(telemetry.registry()),
                new RateLimits(() -> 0L), Optional.empty());
        // Empty the bucket as a request before would have.
        assertThat(routing.rateLimits().take(HOST, CONFIG.routes().get(HOST).getVirtualHosts(0).getRoutes(0), 0.5)
                .limited()).isFalse();
        EmbeddedChannel tunnel = new EmbeddedChannel(
                new Exchange(ExchangeMetricsTest.VIP, Optional.of(ExchangeMetricsTest.CLIENT), routing));
        tunnel.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/x"));
        FullHttpResponse r = tunnel.readOutbound();
        assertThat(r.status().code()).isEqualTo(429);
        assertThat(r.content().toString(StandardCharsets.UTF_8)).isEqualTo("local_rate_limited\n");
        r.release();
        assertThat(ExchangeMetricsTest.sum(telemetry, "wisp_waypoint_rate_limited_total", "route=\"" + RULE + "\"",
                "destination_service=\"" + HOST + "\"")).isEqualTo(1);
        assertThat(ExchangeMetricsTest.sum(telemetry, "istio_requests_total", "response_code=\"429\"")).isEqualTo(1);

        EmbeddedChannel stream = new EmbeddedChannel(
                new Exchange(ExchangeMetricsTest.VIP, Optional.of(ExchangeMetricsTest.CLIENT), routing, true));
        FullHttpRequest call = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, "/shop.Reviews/List",
                Unpooled.copiedBuffer(new byte[]{0, 0, 0, 0, 0}));
        call.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/grpc");
        stream.writeInbound(call);
        FullHttpResponse g = stream.readOutbound();
        assertThat(g.status().code()).isEqualTo(200);
        assertThat(g.headers().get("grpc-status")).as("429 as gRPC's UNAVAILABLE").isEqualTo("14");
        g.release();
        assertThat(call.refCnt()).as("the refused call's body is freed").isZero();
        assertThat(ExchangeMetricsTest.sum(telemetry, "wisp_waypoint_rate_limited_total", "route=\"" + RULE + "\""))
                .isEqualTo(2);
    }
}
