package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.config.route.v3.DirectResponseAction;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpVersion;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The waypoint's request series through its request path ({@link Exchange} on an embedded channel,
 * as a tunnel's stream carries it): each answered request is counted once, by the status the client
 * got, with Istio's labels, and the histograms hold every request's duration and sizes.
 */
class ExchangeMetricsTest {
    static final InetSocketAddress VIP = new InetSocketAddress(InetAddress.ofLiteral("10.96.0.10"), 8080);
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount("cluster.local", "shop", "client");
    static final EnvoyConfig CONFIG = new EnvoyConfig(Map.of("server.default.svc.cluster.local:8080", RouteConfiguration
            .newBuilder().setName("server.default.svc.cluster.local:8080").addVirtualHosts(VirtualHost.newBuilder()
                    .setName("server.default.svc.cluster.local:8080").addDomains("10.96.0.10:8080")
                    .addRoutes(direct("ok", "/ok", 200, "fine"))
                    .addRoutes(direct("down", "/down", 503, "gone")))
            .build()), Set.of(), Map.of());

    static Route direct(String name, String prefix, int status, String body) {
        return Route.newBuilder().setName(name).setMatch(RouteMatch.newBuilder().setPrefix(prefix)).setDirectResponse(
                DirectResponseAction.newBuilder().setStatus(status).setBody(DataSource.newBuilder().setInlineString(
                        body)))
                .build();
    }

    final Telemetry telemetry = new Telemetry();
    final EmbeddedChannel tunnel = new EmbeddedChannel(new Exchange(VIP, Optional.of(CLIENT), routing(telemetry)));

    /** {@link #CONFIG}, no forwarder (every request here is answered by the waypoint), {@code telemetry}'s registry. */
    static Routing routing(Telemetry telemetry) {
        return new Routing(() -> CONFIG, null, new RequestMetrics(telemetry.registry()));
    }

    int send(String path, String body) {
        tunnel.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, path, Unpooled
                .copiedBuffer(body, StandardCharsets.UTF_8)));
        FullHttpResponse r = tunnel.readOutbound();
        try {
            return r.status().code();
        } finally {
            r.release();
        }
    }

    /** The value of every {@code name} series whose labels include all of {@code labels}, summed. */
    double sum(String name, String... labels) {
        return sum(telemetry, name, labels);
    }

    static double sum(Telemetry telemetry, String name, String... labels) {
        double total = 0;
        Matcher m = Pattern.compile("(?m)^" + name + "\\{([^}]*)} (\\S+)$").matcher(telemetry.scrape());
        while (m.find()) {
            List<String> have = new ArrayList<>(List.of(m.group(1).split(",")));
            if (have.containsAll(List.of(labels))) {
                total += Double.parseDouble(m.group(2));
            }
        }
        return total;
    }

    @Test
    void countsEachRequestByTheStatusTheClientGot() {
        List<Integer> got = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            got.add(send("/ok", "abcd"));
        }
        got.add(send("/nothing-here", "ab"));
        got.add(send("/nothing-here", "ab"));
        got.add(send("/down", ""));
        assertThat(got).containsExactly(200, 200, 200, 404, 404, 503);

        assertThat(sum("istio_requests_total", "response_code=\"200\"")).isEqualTo(3);
        assertThat(sum("istio_requests_total", "response_code=\"404\"")).isEqualTo(2);
        assertThat(sum("istio_requests_total", "response_code=\"503\"")).isEqualTo(1);
        assertThat(sum("istio_requests_total")).isEqualTo(6);
        assertThat(sum("istio_requests_total", "reporter=\"waypoint\"", "request_protocol=\"http\"",
                "source_principal=\"spiffe://cluster.local/ns/shop/sa/client\"", "source_workload_namespace=\"shop\"",
                "source_workload=\"unknown\"", "destination_service=\"server.default.svc.cluster.local\"",
                "destination_service_name=\"server\"", "destination_service_namespace=\"default\"",
                "destination_workload_namespace=\"default\"", "connection_security_policy=\"mutual_tls\""))
                .isEqualTo(6);

        // The histograms: one observation per request, Istio's buckets, the bodies' sizes.
        assertThat(sum("istio_request_duration_milliseconds_count")).isEqualTo(6);
        assertThat(sum("istio_request_duration_milliseconds_bucket", "response_code=\"200\"", "le=\"+Inf\""))
                .isEqualTo(3);
        assertThat(sum("istio_request_duration_milliseconds_bucket", "response_code=\"200\"", "le=\"3600000.0\""))
                .isEqualTo(3);
        assertThat(sum("istio_request_bytes_sum")).isEqualTo(3 * 4 + 2 * 2);
        assertThat(sum("istio_request_bytes_bucket", "response_code=\"404\"", "le=\"1.0\"")).isZero();
        assertThat(sum("istio_request_bytes_bucket", "response_code=\"404\"", "le=\"10.0\"")).isEqualTo(2);
        assertThat(sum("istio_response_bytes_count", "response_code=\"503\"")).isEqualTo(1);
        assertThat(sum("istio_response_bytes_sum", "response_code=\"200\"")).isPositive();
    }

    @Test
    void aRequestNoRouteConfigurationServesIsCountedWithAnUnknownService() {
        EmbeddedChannel other = new EmbeddedChannel(new Exchange(new InetSocketAddress(InetAddress.ofLiteral(
                "10.96.0.99"), 80), Optional.empty(), routing(telemetry)));
        other.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/"));
        FullHttpResponse r = other.readOutbound();
        assertThat(r.status().code()).isEqualTo(503);
        r.release();
        assertThat(sum("istio_requests_total", "response_code=\"503\"", "destination_service=\"unknown\"",
                "source_principal=\"unknown\"", "connection_security_policy=\"none\"")).isEqualTo(1);
    }
}
