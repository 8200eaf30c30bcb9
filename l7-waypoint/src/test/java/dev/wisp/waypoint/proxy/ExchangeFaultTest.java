package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.waypoint.route.FaultsTest;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.common.fault.v3.FaultDelay;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpVersion;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A route's injected fault through the waypoint's request path ({@link Exchange} on an embedded
 * channel): the request is held for the delay, then answered the abort's status without a forwarder
 * (there is none here: reaching one would fail the test), and counted in both series.
 */
class ExchangeFaultTest {
    static final String HOST = "server.default.svc.cluster.local:8080";
    /** Every request to {@link #HOST}: held 300 ms, then aborted with 503. */
    static final EnvoyConfig CONFIG = new EnvoyConfig(Map.of(HOST, RouteConfiguration.newBuilder().setName(HOST)
            .addVirtualHosts(VirtualHost.newBuilder().setName(HOST).addDomains("10.96.0.10:8080").addRoutes(
                    FaultsTest.route(FaultsTest.abort(503, 100).toBuilder().setDelay(FaultDelay.newBuilder()
                            .setFixedDelay(com.google.protobuf.Duration.newBuilder().setNanos(300_000_000))
                            .setPercentage(FaultsTest.percent(100))).build()).toBuilder().setName("faulty")
                            .setMatch(RouteMatch.newBuilder().setPrefix("/"))
                            .setRoute(RouteAction.newBuilder()
                                    .setCluster("outbound|8080||server.default.svc.cluster.local"))))
            .build()), Set.of(), Map.of());

    /** The answer written on {@code channel} once its scheduled tasks (the delay) have run. */
    static FullHttpResponse answer(EmbeddedChannel channel) {
        return await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(10)).until(() -> {
            channel.runScheduledPendingTasks();
            return channel.<FullHttpResponse>readOutbound();
        }, x -> x != null);
    }

    @Test
    void aDelayedAbortWaitsItsDelayThenAnswersItsStatusWithoutContactingABackend() {
        Telemetry telemetry = new Telemetry();
        EmbeddedChannel tunnel = new EmbeddedChannel(new Exchange(ExchangeMetricsTest.VIP,
                Optional.of(ExchangeMetricsTest.CLIENT), new Routing(() -> CONFIG, null,
                        new RequestMetrics(telemetry.registry()))));

        long start = System.nanoTime();
        tunnel.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/x"));
        assertThat((Object) tunnel.readOutbound()).as("held for the delay").isNull();
        FullHttpResponse r = answer(tunnel);
        long elapsed = Duration.ofNanos(System.nanoTime() - start).toMillis();
        assertThat(r.status().code()).isEqualTo(503);
        r.release();
        assertThat(elapsed).isBetween(300L, 20_000L);
        assertThat(ExchangeMetricsTest.sum(telemetry, "wisp_waypoint_faults_injected_total", "kind=\"delay\"",
                "destination_service=\"" + HOST + "\"")).isEqualTo(1);
        assertThat(ExchangeMetricsTest.sum(telemetry, "wisp_waypoint_faults_injected_total", "kind=\"abort\""))
                .isEqualTo(1);
        assertThat(ExchangeMetricsTest.sum(telemetry, "istio_requests_total", "response_code=\"503\"",
                "destination_principal=\"unknown\"")).isEqualTo(1);
    }

    @Test
    void aGrpcStatusAbortAnswersAGrpcCallThatStatusAndAnHttpCall200() {
        EnvoyConfig grpc = new EnvoyConfig(Map.of(HOST, RouteConfiguration.newBuilder().setName(HOST)
                .addVirtualHosts(VirtualHost.newBuilder().setName(HOST).addDomains("10.96.0.10:8080").addRoutes(
                        FaultsTest.route(io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault.newBuilder()
                                .setAbort(io.envoyproxy.envoy.extensions.filters.http.fault.v3.FaultAbort.newBuilder()
                                        .setGrpcStatus(8))
                                .build()).toBuilder().setMatch(RouteMatch.newBuilder().setPrefix("/"))
                                .setRoute(RouteAction.newBuilder()
                                        .setCluster("outbound|8080||server.default.svc.cluster.local"))))
                .build()), Set.of(), Map.of());
        Telemetry telemetry = new Telemetry();
        Routing routing = new Routing(() -> grpc, null, new RequestMetrics(telemetry.registry()));
        EmbeddedChannel stream = new EmbeddedChannel(
                new Exchange(ExchangeMetricsTest.VIP, Optional.of(ExchangeMetricsTest.CLIENT), routing, true));
        DefaultHttpRequest head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, "/shop.Reviews/List");
        head.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/grpc");
        stream.writeInbound(head, new DefaultLastHttpContent(Unpooled.copiedBuffer(new byte[]{0, 0, 0, 0, 0})));
        FullHttpResponse g = stream.readOutbound();
        assertThat(g.status().code()).isEqualTo(200);
        assertThat(g.headers().get("grpc-status")).as("RESOURCE_EXHAUSTED as configured").isEqualTo("8");
        g.release();
        EmbeddedChannel tunnel = new EmbeddedChannel(
                new Exchange(ExchangeMetricsTest.VIP, Optional.of(ExchangeMetricsTest.CLIENT), routing));
        tunnel.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/x"));
        FullHttpResponse h = tunnel.readOutbound();
        assertThat(h.status().code()).as("Envoy's answer to a plain request").isEqualTo(200);
        assertThat(h.content().toString(java.nio.charset.StandardCharsets.UTF_8))
                .isEqualTo("aborted by the route's fault filter\n");
        h.release();
        assertThat(ExchangeMetricsTest.sum(telemetry, "istio_requests_total", "grpc_response_status=\"8\""))
                .isEqualTo(1);
        assertThat(ExchangeMetricsTest.sum(telemetry, "wisp_waypoint_faults_injected_total", "kind=\"abort\""))
                .isEqualTo(2);
    }

    @Test
    void aDelayedAbortOfAGrpcCallHoldsItsPartsThenAnswersTheGrpcStatusAndFreesThem() {
        EmbeddedChannel stream = new EmbeddedChannel(new Exchange(ExchangeMetricsTest.VIP,
                Optional.of(ExchangeMetricsTest.CLIENT), new Routing(() -> CONFIG, null,
                        new RequestMetrics(new Telemetry().registry())),
                true));
        DefaultHttpRequest head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, "/shop.Reviews/List");
        head.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/grpc");
        DefaultLastHttpContent body = new DefaultLastHttpContent(Unpooled.copiedBuffer(new byte[]{0, 0, 0, 0, 0}));
        stream.writeInbound(head, body);
        assertThat((Object) stream.readOutbound()).as("held for the delay").isNull();
        assertThat(body.refCnt()).as("the part is held, not dropped").isEqualTo(1);
        FullHttpResponse r = answer(stream);
        assertThat(r.status().code()).isEqualTo(200);
        assertThat(r.headers().get("grpc-status")).as("503 as gRPC's UNAVAILABLE").isEqualTo("14");
        r.release();
        assertThat(body.refCnt()).as("freed with the abort").isZero();
    }
}
