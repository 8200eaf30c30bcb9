package dev.wisp.controlplane.envoy;

import static dev.wisp.controlplane.envoy.FaultTranslationTest.routes;
import static dev.wisp.controlplane.route.RouteFixtures.httpRoute;
import static dev.wisp.controlplane.route.RouteFixtures.model;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import com.google.protobuf.UInt32Value;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.route.HttpRequest;
import dev.wisp.controlplane.route.RouteDecision;
import dev.wisp.controlplane.route.RouteEngine;
import dev.wisp.waypoint.route.RateLimits;
import io.envoyproxy.envoy.config.core.v3.RuntimeFractionalPercent;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit;
import io.envoyproxy.envoy.type.v3.FractionalPercent;
import io.envoyproxy.envoy.type.v3.TokenBucket;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A LocalRateLimit named by a rule's ExtensionRef: emitted as Envoy's local rate limit configuration
 * on the rule's routes (the proto round-trips through its wire form), enforced by the waypoint's
 * {@link RateLimits} with one bucket for the rule's matches, and reported by {@code wisp route check}
 * ({@link RouteEngine}); a name no LocalRateLimit has makes the rule answer 500 on both.
 */
class RateLimitTranslationTest {
    private static final MeshModel MODEL = model("""
            apiVersion: wisp.dev/v1alpha1
            kind: LocalRateLimit
            metadata: {name: three, namespace: shop}
            spec: {tokens: 3, tokensPerFill: 2, fillInterval: 1m}
            ---
            apiVersion: wisp.dev/v1alpha1
            kind: HTTPFault
            metadata: {name: broken, namespace: shop}
            spec:
              abort: {httpStatus: 503}
            """, httpRoute("r", """
              rules:
              - matches: [{path: {value: /limited}}, {path: {value: /also}}]
                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: LocalRateLimit, name: three}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{path: {value: /both}}]
                filters:
                - {type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: broken}}
                - {type: ExtensionRef, extensionRef: {group: wisp.dev, kind: LocalRateLimit, name: three}}
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{path: {value: /missing}}]
                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: LocalRateLimit, name: none}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
            """));

    @Test
    void theRuleCarriesEnvoysLocalRateLimitConfigurationThatRoundTrips() throws Exception {
        RouteConfiguration parsed = FaultTranslationTest.roundTripped(MODEL);
        FractionalPercent all = FractionalPercent.newBuilder().setNumerator(100).build();
        LocalRateLimit expected = LocalRateLimit.newBuilder().setStatPrefix("HTTPRoute/shop/r/rule/0")
                .setTokenBucket(TokenBucket.newBuilder().setMaxTokens(3).setTokensPerFill(UInt32Value.of(2))
                        .setFillInterval(com.google.protobuf.Duration.newBuilder().setSeconds(60)))
                .setFilterEnabled(RuntimeFractionalPercent.newBuilder().setDefaultValue(all)
                        .setRuntimeKey("local_rate_limit_enabled"))
                .setFilterEnforced(RuntimeFractionalPercent.newBuilder().setDefaultValue(all)
                        .setRuntimeKey("local_rate_limit_enforced"))
                .build();
        List<Route> limited = routes(parsed, "/limited");
        assertThat(limited).as("a PathPrefix is two Envoy routes").hasSize(2);
        for (Route r : limited) {
            Any config = r.getTypedPerFilterConfigMap().get("envoy.filters.http.local_ratelimit");
            assertThat(config.getTypeUrl()).isEqualTo(
                    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit");
            assertThat(config.unpack(LocalRateLimit.class)).isEqualTo(expected);
        }
        Route both = routes(parsed, "/both").getFirst();
        assertThat(both.getTypedPerFilterConfigMap()).containsOnlyKeys("envoy.filters.http.fault",
                "envoy.filters.http.local_ratelimit");
        assertThat(both.getTypedPerFilterConfigMap().get("envoy.filters.http.local_ratelimit")
                .unpack(LocalRateLimit.class).getStatPrefix()).isEqualTo("HTTPRoute/shop/r/rule/1");
        assertThat(routes(parsed, "/missing")).allSatisfy(r -> {
            assertThat(r.hasDirectResponse()).as("an ExtensionRef to nothing answers 500").isTrue();
            assertThat(r.getDirectResponse().getStatus()).isEqualTo(500);
        });
    }

    @Test
    void theWaypointTakesTheRulesTokensFromOneBucketForAllItsMatches() {
        RouteConfiguration rc = EnvoyTranslatorTest.routeConfiguration(MODEL);
        RateLimits limits = new RateLimits(() -> 0L);
        String host = rc.getVirtualHosts(0).getName();
        List<Route> rule0 = new java.util.ArrayList<>(routes(rc, "/limited"));
        rule0.addAll(routes(rc, "/also"));
        assertThat(rule0).hasSize(4);
        List<Boolean> limited = rule0.stream().map(r -> limits.take(host, r, 0.5).limited()).toList();
        assertThat(limited).as("three tokens for the rule's four routes").containsExactly(false, false, false, true);
        assertThat(limits.take(host, routes(rc, "/both").getFirst(), 0.5).limited())
                .as("the other rule naming the same limit has its own bucket").isFalse();
    }

    @Test
    void routeCheckReportsTheLimitAndTheMissingReference() {
        RouteDecision d = decide("/limited");
        assertThat(d.status()).isEqualTo(200);
        assertThat(d.rateLimit().ref().qualifiedName()).isEqualTo("shop/three");
        assertThat(d.reason()).isEqualTo("forwarded by HTTPRoute shop/r rule 0, rate limited by LocalRateLimit "
                + "shop/three");
        RouteDecision both = decide("/both");
        assertThat(both.status()).as("the fault's abort, a token taken first").isEqualTo(503);
        assertThat(both.rateLimit().tokens()).isEqualTo(3);
        RouteDecision missing = decide("/missing");
        assertThat(missing.status()).isEqualTo(500);
        assertThat(missing.reason()).contains("LocalRateLimit shop/none, which does not exist");
        assertThat(missing.rateLimit()).isNull();
    }

    private static RouteDecision decide(String path) {
        return RouteEngine.of(MODEL).decide(new RouteEngine.Target("shop", "reviews", 9080), null,
                new HttpRequest("GET", path, "", "reviews.shop.svc.cluster.local:9080", List.of()), new Random(3));
    }
}
