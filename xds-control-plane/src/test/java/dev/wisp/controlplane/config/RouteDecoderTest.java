package dev.wisp.controlplane.config;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.Gateway;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.Namespace;
import dev.wisp.controlplane.model.RouteParts;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.controlplane.model.WaypointNames;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Gateway, HTTPRoute, GRPCRoute and Namespace documents: decoded into the model, or refused by field. */
class RouteDecoderTest {
    static final String ROUTE_HEAD = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: r, namespace: shop}
            spec:
              parentRefs: [{kind: Service, group: "", name: reviews}]
            """;

    @Test
    void anHttpRouteDecodesEveryField() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("r.yaml", ROUTE_HEAD.replace("name: r, namespace: shop",
                "name: r, namespace: shop, creationTimestamp: \"2026-01-02T03:04:05Z\"")
                + """
                          hostnames: [Reviews.Shop]
                          rules:
                          - matches:
                            - path: {type: PathPrefix, value: /api}
                              method: GET
                              headers: [{name: X-Version, value: v2}, {name: x-version, value: ignored}]
                              queryParams: [{type: RegularExpression, name: page, value: "[0-9]+"}]
                            filters:
                            - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}
                            backendRefs: [{name: reviews-v2, port: 9080, weight: 20}]
                            timeouts: {request: 2s}
                            retry: {codes: [503], attempts: 2, backoff: 1m30s}
                          - backendRefs: [{name: reviews-v1, port: 9080}]
                        """);
        assertThat(d.errors()).isEmpty();
        HttpRoute r = (HttpRoute) d.objects().getFirst();
        assertThat(r.created()).hasToString("2026-01-02T03:04:05Z");
        assertThat(r.parents()).containsExactly(new RouteParts.ParentRef("shop", "reviews", null));
        assertThat(r.hostnames()).containsExactly("reviews.shop");
        HttpRoute.Match m = r.rules().getFirst().matches().getFirst();
        assertThat(m.path()).isEqualTo(new RouteParts.PathMatch(RouteParts.PathType.PATH_PREFIX, "/api"));
        assertThat(m.headers()).as("of equivalent header names only the first counts").containsExactly(
                new RouteParts.StringMatch(RouteParts.MatchType.EXACT, "x-version", "v2"));
        assertThat(m.query()).containsExactly(
                new RouteParts.StringMatch(RouteParts.MatchType.REGULAR_EXPRESSION, "page", "[0-9]+"));
        assertThat(r.rules().getFirst().backends()).containsExactly(
                new RouteParts.BackendRef("/Service", "shop", "reviews-v2", 9080, 20, List.of()));
        assertThat(r.rules().getFirst().timeouts()).isEqualTo(new RouteParts.Timeouts(Duration.ofSeconds(2), null));
        assertThat(r.rules().getFirst().retry())
                .isEqualTo(new RouteParts.Retry(List.of(503), 2, Duration.ofSeconds(90)));
        assertThat(r.rules().get(1).matches()).as("no matches: one PathPrefix /")
                .containsExactly(new HttpRoute.Match(RouteParts.PathMatch.DEFAULT, List.of(), List.of(), null));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            unknown rule field         | `  rules: [{matchs: []}]` | 6:spec.rules[0].matchs: unknown field; expected one of backendRefs, filters, matches, name, retry, timeouts
            relative path              | `  rules: [{matches: [{path: {value: api}}]}]` | 6:spec.rules[0].matches[0].path.value: 'api' must start with '/' (at most 1024 characters)
            dot segment                | `  rules: [{matches: [{path: {type: Exact, value: /a/../b}}]}]` | 6:spec.rules[0].matches[0].path.value: '/a/../b' must not contain '/../'
            bad regex                  | `  rules: [{matches: [{path: {type: RegularExpression, value: "/a("}}]}]` | 6:spec.rules[0].matches[0].path.value: '/a(' is not a regular expression: Unclosed group
            bad method                 | `  rules: [{matches: [{method: FETCH}]}]` | 6:spec.rules[0].matches[0].method: 'FETCH' is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH
            prefix rewrite on Exact    | `  rules: [{matches: [{path: {type: Exact, value: /a}}], filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]}]` | 6:spec.rules[0].filters: ReplacePrefixMatch needs every match of the rule to be a PathPrefix match
            redirect and rewrite       | `  rules: [{filters: [{type: RequestRedirect, requestRedirect: {}}, {type: URLRewrite, urlRewrite: {}}]}]` | 6:spec.rules[0].filters: RequestRedirect and URLRewrite cannot be combined
            redirect status            | `  rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307}}]}]` | 6:spec.rules[0].filters[0].requestRedirect.statusCode: '307' is not 301 or 302
            filter body missing        | `  rules: [{filters: [{type: RequestMirror}]}]` | 6:spec.rules[0].filters[0].requestMirror: required for type RequestMirror
            extension ref group        | `  rules: [{filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: HTTPFault, name: f}}]}]` | 6:spec.rules[0].filters[0].extensionRef.group: 'example.com' is not wisp.dev
            extension ref kind         | `  rules: [{filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: Fault, name: f}}]}]` | 6:spec.rules[0].filters[0].extensionRef.kind: 'Fault' is not one of HTTPFault, LocalRateLimit
            extension ref name         | `  rules: [{filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault}}]}]` | 6:spec.rules[0].filters[0].extensionRef.name: required
            extension ref twice        | `  rules: [{filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: a}}, {type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: b}}]}]` | 6:spec.rules[0].filters[1].type: an ExtensionRef to a HTTPFault may appear once per rule
            extension ref on a backend | `  rules: [{backendRefs: [{name: a, port: 80, filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: f}}]}]}]` | 6:spec.rules[0].backendRefs[0].filters: an ExtensionRef filter applies to a whole rule, not to one backend
            header named twice         | `  rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "1"}], remove: [x-a]}}]}]` | 6:spec.rules[0].filters[0].requestHeaderModifier.remove[0]: 'x-a' is named twice in this modifier (set, add and remove)
            bad duration               | `  rules: [{timeouts: {request: 5 seconds}}]` | 6:spec.rules[0].timeouts.request: '5 seconds' is not a Gateway API duration such as 500ms, 10s or 1m30s
            backend timeout too long   | `  rules: [{timeouts: {request: 1s, backendRequest: 2s}}]` | 6:spec.rules[0].timeouts.backendRequest: must not be longer than timeouts.request
            retry code                 | `  rules: [{retry: {codes: [200]}}]` | 6:spec.rules[0].retry.codes[0]: '200' is not a whole number from 400 to 599
            weight                     | `  rules: [{backendRefs: [{name: a, port: 80, weight: 1000001}]}]` | 6:spec.rules[0].backendRefs[0].weight: '1000001' is not a whole number from 0 to 1000000
            backend port               | `  rules: [{backendRefs: [{name: a}]}]` | 6:spec.rules[0].backendRefs[0].port: required for a Service backend
            """)
    void httpRouteErrorsNameTheField(String title, String specLines, String expected) {
        ConfigDecoderTest.assertRefused("r.yaml", ROUTE_HEAD + specLines + "\n", "HTTPRoute shop/r", expected);
    }

    @Test
    void aGatewayParentIsRefusedSinceWispRunsNoIngressGateway() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("r.yaml",
                ROUTE_HEAD.replace("{kind: Service, group: \"\", name: reviews}", "{name: ingress}"));
        assertThat(d.errors()).extracting(ConfigError::toString).containsExactly("r.yaml:5 HTTPRoute shop/r: "
                + "spec.parentRefs[0].kind: 'gateway.networking.k8s.io/Gateway' is not a mesh parent: Wisp runs no "
                + "ingress gateway; attach the route to a Service (kind: Service, group: \"\")");
    }

    @Test
    void grpcRoutesAllowOnlyTheirOwnFilters() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("g.yaml", ROUTE_HEAD.replace("HTTPRoute", "GRPCRoute") + """
                  rules:
                  - matches: [{method: {service: "shop.Reviews", method: "List"}}]
                    filters: [{type: URLRewrite, urlRewrite: {}}]
                  - matches: [{method: {}}]
                """);
        assertThat(d.errors()).extracting(ConfigError::toString).containsExactly(
                "g.yaml:8 GRPCRoute shop/r: spec.rules[0].filters[0].type: 'URLRewrite' is not one of "
                        + "RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef",
                "g.yaml:9 GRPCRoute shop/r: spec.rules[1].matches[0].method: needs service or method (or both)");
    }

    @Test
    void waypointGatewaysNamespacesAndServiceLabels() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("w.yaml", """
                apiVersion: gateway.networking.k8s.io/v1
                kind: Gateway
                metadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: all}}
                spec:
                  gatewayClassName: istio-waypoint
                  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
                ---
                apiVersion: v1
                kind: Namespace
                metadata: {name: shop, labels: {istio.io/use-waypoint: waypoint}}
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: reviews, namespace: shop, labels: {wisp.dev/use-waypoint: none}}
                spec: {clusterIP: 10.96.0.9, ports: [{port: 80}]}
                """);
        assertThat(d.errors()).isEmpty();
        Gateway g = (Gateway) d.objects().get(0);
        assertThat(WaypointNames.ISTIO_AND_WISP.declaresWaypoint(g)).isTrue();
        assertThat(WaypointNames.WISP_ONLY.declaresWaypoint(g)).as("Istio's class only when honoured").isFalse();
        assertThat(WaypointNames.ISTIO_AND_WISP.waypointFor(g)).isEqualTo(WaypointNames.For.ALL);
        assertThat(((Namespace) d.objects().get(1)).labels()).containsEntry("istio.io/use-waypoint", "waypoint");
        assertThat(((ServiceDef) d.objects().get(2)).labels()).isEqualTo(Map.of("wisp.dev/use-waypoint", "none"));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            no mesh listener | `{}` | `[{name: http, port: 80, protocol: HTTP}]` | 4:spec.listeners: a waypoint needs the listener {name: mesh, port: 15008, protocol: HBONE}
            waypoint-for     | `{wisp.dev/waypoint-for: pods}` | `[{name: mesh, port: 15008, protocol: HBONE}]` | 3:metadata.labels.wisp.dev/waypoint-for: 'pods' is not one of service, workload, all, none
            """)
    void waypointGatewayErrors(String title, String labels, String listeners, String expected) {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("w.yaml", """
                apiVersion: gateway.networking.k8s.io/v1
                kind: Gateway
                metadata: {name: waypoint, namespace: shop, labels: %s}
                spec:
                  gatewayClassName: wisp-waypoint
                  listeners: %s
                """.formatted(labels, listeners));
        assertThat(d.errors()).extracting(ConfigError::toString)
                .containsExactly("w.yaml:" + expected.replaceFirst(":", " Gateway shop/waypoint: "));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            service name  | Service   | `{istio.io/use-waypoint: My_Waypoint}` | 3 Service shop/reviews: metadata.labels.istio.io/use-waypoint: 'My_Waypoint' is not a Gateway name (lower-case letters, digits, '-' and '.'), nor none
            pod namespace | Pod       | `{wisp.dev/use-waypoint: wp, wisp.dev/use-waypoint-namespace: a.b}` | 3 Pod shop/reviews: metadata.labels.wisp.dev/use-waypoint-namespace: 'a.b' is not a namespace name
            """)
    void waypointLabelErrorsNameTheObjectAndTheLabel(String title, String kind, String labels, String expected) {
        String spec = kind.equals("Pod") ? "spec: {nodeName: n1}" : "spec: {clusterIP: 10.96.0.9, ports: [{port: 80}]}";
        ConfigDecoder.Decoded d = ConfigDecoder.decode("l.yaml", """
                apiVersion: v1
                kind: %s
                metadata: {name: reviews, namespace: shop, labels: %s}
                %s
                """.formatted(kind, labels, spec));
        assertThat(d.errors()).extracting(ConfigError::toString).containsExactly("l.yaml:" + expected);
    }
}
