package dev.wisp.waypoint.route;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.UInt32Value;
import dev.wisp.waypoint.route.EnvoyRoutes.Decision;
import io.envoyproxy.envoy.config.route.v3.DirectResponseAction;
import io.envoyproxy.envoy.config.route.v3.HeaderMatcher;
import io.envoyproxy.envoy.config.route.v3.QueryParameterMatcher;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.config.route.v3.WeightedCluster;
import io.envoyproxy.envoy.type.matcher.v3.RegexMatcher;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class EnvoyRoutesTest {
    static final VirtualHost HOST = VirtualHost.newBuilder().setName("reviews")
            .addRoutes(route("exact", RouteMatch.newBuilder().setPath("/api"), "exact"))
            .addRoutes(route("v2-header", RouteMatch.newBuilder().setPrefix("/").addHeaders(HeaderMatcher.newBuilder()
                    .setName("x-version").setStringMatch(StringMatcher.newBuilder().setExact("v2"))), "v2"))
            .addRoutes(route("regex", RouteMatch.newBuilder().setSafeRegex(RegexMatcher.newBuilder()
                    .setRegex("/items/[0-9]+")), "items"))
            .addRoutes(route("post", RouteMatch.newBuilder().setPrefix("/").addHeaders(HeaderMatcher.newBuilder()
                    .setName(":method").setStringMatch(StringMatcher.newBuilder().setExact("POST"))), "writer"))
            .addRoutes(route("query", RouteMatch.newBuilder().setPrefix("/q").addQueryParameters(
                    QueryParameterMatcher.newBuilder().setName("debug").setStringMatch(StringMatcher.newBuilder()
                            .setExact("1"))),
                    "debug"))
            .addRoutes(Route.newBuilder().setName("split").setMatch(RouteMatch.newBuilder().setPrefix("/api/"))
                    .setRoute(RouteAction.newBuilder().setWeightedClusters(WeightedCluster.newBuilder()
                            .addClusters(weight("v1", 80)).addClusters(weight("v2", 20)))))
            .addRoutes(Route.newBuilder().setName("zero").setMatch(RouteMatch.newBuilder().setPrefix("/zero"))
                    .setRoute(RouteAction.newBuilder().setWeightedClusters(WeightedCluster.newBuilder()
                            .addClusters(weight("v1", 0)))))
            .addRoutes(Route.newBuilder().setName("teapot").setMatch(RouteMatch.newBuilder().setPrefix("/tea"))
                    .setDirectResponse(DirectResponseAction.newBuilder().setStatus(418)))
            .build();

    static Route route(String name, RouteMatch.Builder match, String cluster) {
        return Route.newBuilder().setName(name).setMatch(match).setRoute(RouteAction.newBuilder().setCluster(cluster))
                .build();
    }

    static WeightedCluster.ClusterWeight weight(String cluster, int w) {
        return WeightedCluster.ClusterWeight.newBuilder().setName(cluster).setWeight(UInt32Value.of(w)).build();
    }

    static Decision decide(String method, String target, double draw, String... headers) {
        int q = target.indexOf('?');
        Map<String, List<String>> h = new java.util.HashMap<>();
        for (int i = 0; i < headers.length; i += 2) {
            h.put(headers[i], List.of(headers[i + 1]));
        }
        return EnvoyRoutes.decide(HOST, new EnvoyRoutes.Request(method, q < 0 ? target : target.substring(0, q),
                q < 0 ? "" : target.substring(q + 1), h), draw);
    }

    static String cluster(Decision d) {
        return d instanceof Decision.Forward f ? f.cluster() : "status " + ((Decision.Respond) d).status();
    }

    @Test
    void theFirstMatchingRouteDecidesInTheOrderTheControlPlaneGave() {
        assertThat(cluster(decide("GET", "/api", 0.5))).as("exact path").isEqualTo("exact");
        assertThat(cluster(decide("GET", "/api", 0.5, "x-version", "v2"))).as("exact comes first").isEqualTo("exact");
        assertThat(cluster(decide("GET", "/api/x", 0.5, "x-version", "v2"))).isEqualTo("v2");
        assertThat(cluster(decide("GET", "/api/x", 0.5, "x-version", "v3"))).as("header value differs")
                .isEqualTo("v1");
        assertThat(cluster(decide("GET", "/items/42", 0.5))).as("regex on the whole path").isEqualTo("items");
        assertThat(cluster(decide("GET", "/items/42/x", 0.5))).as("not a whole match").isEqualTo("status 404");
        assertThat(cluster(decide("POST", "/anything", 0.5))).as(":method").isEqualTo("writer");
        assertThat(cluster(decide("GET", "/q?a=2&debug=1", 0.5))).as("query parameter").isEqualTo("debug");
        assertThat(cluster(decide("GET", "/q?debug=0", 0.5))).isEqualTo("status 404");
        assertThat(cluster(decide("GET", "/tea", 0.5))).as("direct response").isEqualTo("status 418");
        assertThat(cluster(decide("GET", "/other", 0.5))).as("no route").isEqualTo("status 404");
    }

    @Test
    void weightedClustersAreDrawnByTheirWeights() {
        assertThat(cluster(decide("GET", "/api/x", 0.0))).isEqualTo("v1");
        assertThat(cluster(decide("GET", "/api/x", 0.799))).isEqualTo("v1");
        assertThat(cluster(decide("GET", "/api/x", 0.8))).isEqualTo("v2");
        assertThat(cluster(decide("GET", "/api/x", 0.999))).isEqualTo("v2");
        assertThat(cluster(decide("GET", "/zero", 0.3))).as("every weight 0").isEqualTo("status 500");
        Decision.Forward f = (Decision.Forward) decide("GET", "/api/x", 0.9);
        assertThat(f.route()).isEqualTo("split");
    }
}
