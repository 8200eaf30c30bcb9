package dev.wisp.controlplane.envoy;

import static dev.wisp.controlplane.route.RouteFixtures.httpRoute;
import static dev.wisp.controlplane.route.RouteFixtures.model;
import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.MeshModel;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RedirectAction;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Table tests of the Envoy translation: Gateway API routes attached to {@code shop/reviews:9080}
 * → the routes of its {@link RouteConfiguration}, in the order Envoy tries them, written as one
 * line each ({@code match → action}); plus the listener, cluster and load assignment of a port.
 */
class EnvoyTranslatorTest {
    static final String NAME = "reviews.shop.svc.cluster.local:9080";
    static final String V1 = "outbound|9080||reviews-v1.shop.svc.cluster.local";
    static final String V2 = "outbound|9080||reviews-v2.shop.svc.cluster.local";
    static final String SELF = "outbound|9080||reviews.shop.svc.cluster.local";

    static Stream<Arguments> routes() {
        return Stream.of(Arguments.of("no route attached: everything to the service itself", List.of(), List.of(
                "prefix=/ → " + SELF)),
                Arguments.of("weighted backends; a weight of 0 takes nothing", List.of(httpRoute("split", """
                          rules:
                          - backendRefs:
                            - {name: reviews-v1, port: 9080, weight: 80}
                            - {name: reviews-v2, port: 9080, weight: 20}
                            - {name: reviews, port: 9080, weight: 0}
                        """)), List.of("prefix=/ → " + V1 + "*80," + V2 + "*20")),
                Arguments.of("the header match outranks the plain rule written before it",
                        List.of(httpRoute("h", """
                                  rules:
                                  - backendRefs: [{name: reviews-v1, port: 9080}]
                                  - matches: [{headers: [{name: X-Version, value: v2}]}]
                                    backendRefs: [{name: reviews-v2, port: 9080}]
                                """)),
                        List.of("prefix=/ x-version=v2 → " + V2, "prefix=/ → " + V1)),
                Arguments.of("exact, then regex, then the longest prefix (whole segments: path and path/)",
                        List.of(httpRoute("p", """
                                  rules:
                                  - matches: [{path: {type: PathPrefix, value: /api/}}]
                                    backendRefs: [{name: reviews-v1, port: 9080}]
                                  - matches: [{path: {type: PathPrefix, value: /api/v2}}]
                                    backendRefs: [{name: reviews-v2, port: 9080}]
                                  - matches: [{path: {type: RegularExpression, value: "/r/[0-9]+"}}]
                                    backendRefs: [{name: reviews-v2, port: 9080}]
                                  - matches: [{path: {type: Exact, value: /health}}]
                                    backendRefs: [{name: reviews, port: 9080}]
                                """)),
                        List.of("path=/health → " + SELF, "regex=/r/[0-9]+ → " + V2, "path=/api/v2 → " + V2,
                                "prefix=/api/v2/ → " + V2, "path=/api → " + V1, "prefix=/api/ → " + V1)),
                Arguments.of("method and query parameters", List.of(httpRoute("m", """
                          rules:
                          - matches: [{method: POST, queryParams: [{name: debug, value: "1"}]}]
                            backendRefs: [{name: reviews-v2, port: 9080}]
                        """)), List.of("prefix=/ :method=POST ?debug=1 → " + V2)),
                Arguments.of("a backend that is not a Service is a cluster no one has, answered 500",
                        List.of(httpRoute("bad", """
                                  rules:
                                  - backendRefs: [{group: example.com, kind: Bucket, name: b}]
                                """)),
                        List.of("prefix=/ → invalid|example.com/Bucket|shop/b:0")),
                Arguments.of("all weights 0: 500", List.of(httpRoute("zero", """
                          rules:
                          - backendRefs: [{name: reviews-v1, port: 9080, weight: 0}]
                        """)), List.of("prefix=/ → direct 500")),
                Arguments.of("GRPCRoutes first (content-type gRPC), their own 404, then the HTTP default",
                        List.of("""
                                kind: GRPCRoute
                                apiVersion: gateway.networking.k8s.io/v1
                                metadata: {namespace: shop, name: grpc}
                                spec:
                                  rules:
                                  - {matches: [{method: {method: List}}], backendRefs: [{name: reviews-v1, port: 9080}]}
                                  - {matches: [{method: {service: shop.Reviews, method: List}}], backendRefs: [{name: reviews-v2, port: 9080}]}
                                  - {matches: [{method: {service: shop.Reviews}}], backendRefs: [{name: reviews-v1, port: 9080}]}
                                  parentRefs: [{group: "", kind: Service, name: reviews}]
                                """),
                        List.of("path=/shop.Reviews/List content-type~application/grpc([+;].*)? → " + V2,
                                "prefix=/shop.Reviews/ content-type~application/grpc([+;].*)? → " + V1,
                                "regex=/[^/]+/\\QList\\E content-type~application/grpc([+;].*)? → " + V1,
                                "prefix=/ content-type~application/grpc([+;].*)? → direct 404",
                                "prefix=/ → " + SELF)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("routes")
    void routesInEnvoyOrder(String what, List<String> routeYaml, List<String> expected) {
        RouteConfiguration rc = routeConfiguration(model(routeYaml.toArray(String[]::new)));
        assertThat(rc.getVirtualHostsList()).hasSize(1);
        assertThat(rc.getVirtualHosts(0).getRoutesList()).extracting(EnvoyTranslatorTest::line)
                .containsExactlyElementsOf(expected);
    }

    @Test
    void invalidBackendsAnswer500NotEnvoysDefault503() {
        Route r = routeConfiguration(model(httpRoute("bad", """
                  rules:
                  - backendRefs: [{name: nowhere, port: 9080}]
                """))).getVirtualHosts(0).getRoutes(0);
        assertThat(r.getRoute().getCluster()).isEqualTo("invalid|/Service|shop/nowhere:9080");
        assertThat(r.getRoute().getClusterNotFoundResponseCode())
                .isEqualTo(RouteAction.ClusterNotFoundResponseCode.INTERNAL_SERVER_ERROR);
    }

    @Test
    void filtersBecomeHeaderOptionsRewritesRedirectsAndMirrors() {
        MeshModel m = model(httpRoute("f",
                """
                          rules:
                          - matches: [{path: {value: /api}}]
                            filters:
                            - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: "1"}], add: [{name: x-b, value: "2"}], remove: [x-c]}}
                            - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-r, value: "3"}]}}
                            - {type: URLRewrite, urlRewrite: {hostname: v2.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}
                            - {type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}}}
                            backendRefs: [{name: reviews-v1, port: 9080}]
                          - matches: [{path: {type: Exact, value: /old}}]
                            filters: [{type: RequestRedirect, requestRedirect: {hostname: new.example, statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /new}}}]
                          - matches: [{path: {type: Exact, value: /full}}]
                            filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /fixed}}}]
                            backendRefs: [{name: reviews-v1, port: 9080}]
                        """));
        List<Route> routes = routeConfiguration(m).getVirtualHosts(0).getRoutesList();
        // Two Exact paths of equal rank: rule order.
        Route full = routes.get(1);
        assertThat(full.getRoute().getRegexRewrite().getPattern().getRegex()).isEqualTo("^/.*$");
        assertThat(full.getRoute().getRegexRewrite().getSubstitution()).isEqualTo("/fixed");
        Route redirect = routes.get(0);
        assertThat(redirect.getMatch().getPath()).isEqualTo("/old");
        assertThat(redirect.getRedirect().getHostRedirect()).isEqualTo("new.example");
        assertThat(redirect.getRedirect().getPathRedirect()).isEqualTo("/new");
        assertThat(redirect.getRedirect().getPortRedirect()).as("no scheme or port given: the service port")
                .isEqualTo(9080);
        assertThat(redirect.getRedirect().getResponseCode())
                .isEqualTo(RedirectAction.RedirectResponseCode.MOVED_PERMANENTLY);
        Route exact = routes.get(2);
        Route prefix = routes.get(3);
        assertThat(exact.getMatch().getPath()).isEqualTo("/api");
        assertThat(exact.getRoute().getPrefixRewrite()).as("/api → /v2").isEqualTo("/v2");
        assertThat(prefix.getMatch().getPrefix()).isEqualTo("/api/");
        assertThat(prefix.getRoute().getPrefixRewrite()).as("/api/x → /v2/x").isEqualTo("/v2/");
        assertThat(prefix.getRoute().getHostRewriteLiteral()).isEqualTo("v2.example");
        assertThat(prefix.getRequestHeadersToAddList()).extracting(
                h -> h.getHeader().getKey() + "=" + h.getHeader().getValue() + " " + h.getAppendAction())
                .containsExactly("x-a=1 OVERWRITE_IF_EXISTS_OR_ADD", "x-b=2 APPEND_IF_EXISTS_OR_ADD");
        assertThat(prefix.getRequestHeadersToRemoveList()).containsExactly("x-c");
        assertThat(prefix.getResponseHeadersToAddList()).extracting(h -> h.getHeader().getKey()).containsExactly("x-r");
        assertThat(prefix.getRoute().getRequestMirrorPoliciesList()).extracting(p -> p.getCluster())
                .containsExactly(V2);
        assertThat(prefix.getRoute().getRequestMirrorPolicies(0).getRuntimeFraction().getDefaultValue().getNumerator())
                .isEqualTo(100);
    }

    @Test
    void timeoutsAndRetry() {
        List<Route> routes = routeConfiguration(model(httpRoute("t", """
                  rules:
                  - matches: [{path: {type: Exact, value: /slow}}]
                    backendRefs: [{name: reviews-v1, port: 9080}]
                    timeouts: {request: 1m30s, backendRequest: 500ms}
                    retry: {codes: [503, 502], attempts: 3, backoff: 100ms}
                  - backendRefs: [{name: reviews-v1, port: 9080}]
                """))).getVirtualHosts(0).getRoutesList();
        RouteAction slow = routes.get(0).getRoute();
        assertThat(slow.getTimeout().getSeconds()).isEqualTo(90);
        assertThat(slow.getRetryPolicy().getRetryOn()).isEqualTo("retriable-status-codes,connect-failure");
        assertThat(slow.getRetryPolicy().getRetriableStatusCodesList()).containsExactly(503, 502);
        assertThat(slow.getRetryPolicy().getNumRetries().getValue()).isEqualTo(3);
        assertThat(slow.getRetryPolicy().getRetryBackOff().getBaseInterval().getNanos()).isEqualTo(100_000_000);
        assertThat(slow.getRetryPolicy().getPerTryTimeout().getNanos()).isEqualTo(500_000_000);
        RouteAction plain = routes.get(1).getRoute();
        assertThat(plain.hasTimeout()).as("Envoy's implicit 15 s replaced by no timeout").isTrue();
        assertThat(plain.getTimeout().getSeconds()).isZero();
        assertThat(plain.hasRetryPolicy()).isFalse();
    }

    @Test
    void everyServicePortHasAnApiListenerOverRdsAnEdsClusterAndItsReadyEndpoints() throws Exception {
        EnvoyResources r = EnvoyTranslator.translate(model());
        Listener l = r.listeners().stream().filter(x -> x.getName().equals(NAME)).findFirst().orElseThrow();
        HttpConnectionManager hcm = l.getApiListener().getApiListener().unpack(HttpConnectionManager.class);
        assertThat(hcm.getRds().getRouteConfigName()).isEqualTo(NAME);
        assertThat(hcm.getRds().getConfigSource().hasAds()).isTrue();
        assertThat(hcm.getHttpFiltersList()).extracting(f -> f.getName()).containsExactly("envoy.filters.http.router");
        assertThat(r.routes()).extracting(RouteConfiguration::getName).contains(NAME);
        RouteConfiguration rc = r.routes().stream().filter(x -> x.getName().equals(NAME)).findFirst().orElseThrow();
        assertThat(rc.getVirtualHosts(0).getDomainsList()).contains(NAME, "reviews", "reviews.shop:9080",
                "10.96.0.10", "10.96.0.10:9080");
        Cluster c = r.clusters().stream().filter(x -> x.getName().equals(SELF)).findFirst().orElseThrow();
        assertThat(c.getType()).isEqualTo(Cluster.DiscoveryType.EDS);
        assertThat(c.getEdsClusterConfig().getEdsConfig().hasAds()).isTrue();
        ClusterLoadAssignment self = assignment(r, SELF);
        assertThat(self.getEndpoints(0).getLbEndpointsList()).extracting(
                e -> e.getEndpoint().getAddress().getSocketAddress().getAddress() + ":"
                        + e.getEndpoint().getAddress().getSocketAddress().getPortValue())
                .containsExactly("10.1.1.5:9080", "10.1.1.6:9080");
        assertThat(self.getEndpoints(0).getLbEndpoints(0).getMetadata().getFilterMetadataOrThrow(
                EnvoyNames.TUNNEL_METADATA).getFieldsMap()).as("the HBONE tunnel a waypoint takes to the pod")
                .extractingFromEntries(e -> e.getKey() + "=" + e.getValue().getStringValue())
                .containsExactlyInAnyOrder("address=10.0.0.1:15008", "node=node-a",
                        "identity=spiffe://cluster.local/ns/shop/sa/reviews", "workload=reviews");
        assertThat(assignment(r, V2).getEndpoints(0).getLbEndpointsCount()).isOne();
        assertThat(assignment(r, "outbound|9080||empty.shop.svc.cluster.local").getEndpointsCount())
                .as("no pod selected: no endpoints").isZero();
        assertThat(EnvoyTranslator.translate(model())).as("pure: the same model, the same protos").isEqualTo(r);
        assertThat(r.snapshot("7").routes().version()).isEqualTo("7");
    }

    static ClusterLoadAssignment assignment(EnvoyResources r, String cluster) {
        return r.endpoints().stream().filter(x -> x.getClusterName().equals(cluster)).findFirst().orElseThrow();
    }

    static RouteConfiguration routeConfiguration(MeshModel m) {
        return EnvoyTranslator.translate(m).routes().stream().filter(x -> x.getName().equals(NAME)).findFirst()
                .orElseThrow();
    }

    /** A route as one line: its match, then its cluster(s) or direct answer. */
    static String line(Route r) {
        StringBuilder b = new StringBuilder();
        var m = r.getMatch();
        switch (m.getPathSpecifierCase()) {
            case PATH -> b.append("path=").append(m.getPath());
            case PREFIX -> b.append("prefix=").append(m.getPrefix());
            case SAFE_REGEX -> b.append("regex=").append(m.getSafeRegex().getRegex());
            default -> b.append(m.getPathSpecifierCase());
        }
        for (var h : m.getHeadersList()) {
            var s = h.getStringMatch();
            b.append(' ').append(h.getName())
                    .append(s.hasSafeRegex() ? "~" + s.getSafeRegex().getRegex() : "=" + s.getExact());
        }
        for (var q : m.getQueryParametersList()) {
            b.append(" ?").append(q.getName()).append('=').append(q.getStringMatch().getExact());
        }
        b.append(" → ");
        if (r.hasDirectResponse()) {
            return b.append("direct ").append(r.getDirectResponse().getStatus()).toString();
        }
        RouteAction a = r.getRoute();
        if (a.hasWeightedClusters()) {
            b.append(String.join(",", a.getWeightedClusters().getClustersList().stream()
                    .map(c -> c.getName() + "*" + c.getWeight().getValue()).toList()));
        } else {
            b.append(a.getCluster());
        }
        return b.toString();
    }
}
