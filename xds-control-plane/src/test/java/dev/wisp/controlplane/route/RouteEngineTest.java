package dev.wisp.controlplane.route;

import static dev.wisp.controlplane.route.RouteFixtures.httpRoute;
import static dev.wisp.controlplane.route.RouteFixtures.model;
import static dev.wisp.controlplane.route.RouteFixtures.request;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.route.HttpRequest.Header;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The route engine against the Gateway API's matching, precedence and filter semantics. */
class RouteEngineTest {
    static final RouteEngine.Target REVIEWS = new RouteEngine.Target("shop", "reviews", 9080);

    /** One rule per match kind, each sending to a backend named after it; the test asks which won. */
    static final MeshModel PRECEDENCE = model(httpRoute("a-route",
            """
                      rules:
                      - matches: [{path: {type: PathPrefix, value: /}}]
                        backendRefs: [{name: reviews-v1, port: 9080}]
                      - matches: [{path: {type: PathPrefix, value: /api}}]
                        backendRefs: [{name: reviews-v1, port: 9080}]
                      - matches: [{path: {type: PathPrefix, value: /api/v2/}}]
                        backendRefs: [{name: reviews-v1, port: 9080}]
                      - matches: [{path: {type: Exact, value: /api/v2/list}}]
                        backendRefs: [{name: reviews-v1, port: 9080}]
                      - matches: [{path: {type: PathPrefix, value: /api}, method: POST}]
                        backendRefs: [{name: reviews-v1, port: 9080}]
                      - matches: [{path: {type: PathPrefix, value: /api}, method: POST, headers: [{name: X-Version, value: v2}]}]
                        backendRefs: [{name: reviews-v1, port: 9080}]
                      - matches: [{path: {type: PathPrefix, value: /api}, method: POST, headers: [{name: x-version, value: v2}], queryParams: [{name: debug, value: "1"}]}]
                        backendRefs: [{name: reviews-v1, port: 9080}]
                      - matches: [{path: {type: RegularExpression, value: "/img/[0-9]+"}}]
                        backendRefs: [{name: reviews-v1, port: 9080}]
                    """));

    static RouteDecision decide(MeshModel m, HttpRequest r) {
        return RouteEngine.of(m).decide(REVIEWS, null, r, new Random(1));
    }

    @ParameterizedTest(name = "{0} {1} -> rule {3}")
    @CsvSource(delimiter = '|', textBlock = """
            GET  | /                 |                | 0 | default prefix / catches all
            GET  | /apix             |                | 0 | PathPrefix matches whole segments only
            GET  | /api              |                | 1 | the prefix itself
            GET  | /api/v2           |                | 2 | a trailing / of a prefix is ignored
            GET  | /api/v2/x         |                | 2 | longest prefix wins
            GET  | /api/v2/list      |                | 3 | Exact beats every prefix
            POST | /api/v2/list      |                | 3 | Exact beats a method match
            POST | /api/x            |                | 4 | a method match beats the same prefix without
            POST | /api/x            | X-VERSION: v2  | 5 | header names match case-insensitively; more headers win
            POST | /api/x?debug=1    | x-version: v2  | 6 | more query parameters win
            POST | /api/x?Debug=1    | x-version: v2  | 5 | query parameter names are case-sensitive
            POST | /api/x            | x-version: V2  | 4 | header values match exactly
            GET  | /img/42           |                | 7 | a RegularExpression matches the whole path and ranks above prefixes
            GET  | /img/42x          |                | 0 | and only the whole path
            GET  | /api/v2/list/x    |                | 2 | longest prefix, not the Exact of its parent
            """)
    void precedenceAmongMatchingRules(String method, String target, String header, int rule, String why) {
        HttpRequest r = header == null ? request(method + " " + target) : request(method + " " + target, header);
        RouteDecision d = decide(PRECEDENCE, r);
        assertThat(d.rule()).as(why).isEqualTo(rule);
        assertThat(d.status()).isEqualTo(200);
        assertThat(d.route().qualifiedName()).isEqualTo("shop/a-route");
    }

    @Test
    void tiesGoToTheOldestRouteThenByNamespaceAndName() {
        String rules = """
                  rules:
                  - matches: [{path: {type: PathPrefix, value: /same}}]
                    backendRefs: [{name: reviews-v1, port: 9080}]
                """;
        MeshModel byName = model(httpRoute("b-route", rules), httpRoute("a-route", rules));
        assertThat(decide(byName, request("GET /same")).route().name()).isEqualTo("a-route");
        MeshModel byAge = model(httpRoute("b-route", rules).replace("namespace: shop}",
                "namespace: shop, creationTimestamp: \"2026-01-01T00:00:00Z\"}"),
                httpRoute("a-route", rules).replace("namespace: shop}",
                        "namespace: shop, creationTimestamp: \"2026-06-01T00:00:00Z\"}"));
        assertThat(decide(byAge, request("GET /same")).route().name()).isEqualTo("b-route");
        MeshModel byRule = model(httpRoute("r", rules + rules.substring(rules.indexOf("  - "))));
        assertThat(decide(byRule, request("GET /same")).rule()).isEqualTo(0);
    }

    @Test
    void weightedBackendsSplitByWeightAndWeightZeroTakesNothing() {
        MeshModel m = model(httpRoute("split", """
                  rules:
                  - backendRefs:
                    - {name: reviews-v1, port: 9080, weight: 80}
                    - {name: reviews-v2, port: 9080, weight: 20}
                    - {name: reviews, port: 9080, weight: 0}
                """));
        RouteEngine engine = RouteEngine.of(m);
        Random random = new Random(42);
        Map<String, Integer> counts = new HashMap<>();
        for (int i = 0; i < 10_000; i++) {
            counts.merge(engine.decide(REVIEWS, null, request("GET /"), random).backend().display(), 1, Integer::sum);
        }
        assertThat(counts).containsOnlyKeys("shop/reviews-v1:9080", "shop/reviews-v2:9080");
        assertThat(counts.get("shop/reviews-v2:9080")).isBetween(1_800, 2_200);
    }

    @Test
    void outcomesWithoutForwarding() {
        MeshModel m = model(httpRoute("r", """
                  rules:
                  - matches: [{path: {value: /missing}}]
                    backendRefs: [{name: nowhere, port: 9080}]
                  - matches: [{path: {value: /wrong-port}}]
                    backendRefs: [{name: reviews-v1, port: 1234}]
                  - matches: [{path: {value: /zero}}]
                    backendRefs: [{name: reviews-v1, port: 9080, weight: 0}]
                  - matches: [{path: {value: /other-kind}}]
                    backendRefs: [{group: example.com, kind: Bucket, name: b}]
                  - matches: [{path: {value: /other-ns}}]
                    backendRefs: [{name: reviews, namespace: default, port: 9080}]
                  - matches: [{path: {value: /empty}}]
                    backendRefs: [{name: empty, port: 9080}]
                  - matches: [{path: {value: /self}}]
                """));
        assertThat(decide(m, request("GET /nothing")).status()).isEqualTo(404);
        assertThat(decide(m, request("GET /nothing")).route()).isNull();
        for (String path : new String[]{"/missing", "/wrong-port", "/zero", "/other-kind", "/other-ns"}) {
            RouteDecision d = decide(m, request("GET " + path));
            assertThat(d.status()).as(path + ": " + d.reason()).isEqualTo(500);
            assertThat(d.backend()).isNull();
        }
        assertThat(decide(m, request("GET /empty")).status()).isEqualTo(503);
        RouteDecision self = decide(m, request("GET /self"));
        assertThat(self.status()).isEqualTo(200);
        assertThat(self.backend().display()).as("a rule without backendRefs goes to its parent")
                .isEqualTo("shop/reviews:9080");
    }

    @Test
    void withoutAttachedRoutesTheRequestGoesToTheServiceItself() {
        MeshModel m = model();
        RouteDecision d = decide(m, request("GET /a?b=c"));
        assertThat(d.status()).isEqualTo(200);
        assertThat(d.route()).isNull();
        assertThat(d.backend().display()).isEqualTo("shop/reviews:9080");
        assertThat(d.path()).isEqualTo("/a?b=c");
        assertThatThrownBy(() -> RouteEngine.of(m).decide(new RouteEngine.Target("shop", "nope", 80), null,
                request("GET /"), new Random(1))).hasMessage("no Service shop/nope in the configuration");
        assertThatThrownBy(() -> RouteEngine.of(m).decide(new RouteEngine.Target("shop", "reviews", 80), null,
                request("GET /"), new Random(1))).hasMessage("Service shop/reviews has no port 80");
    }

    @Test
    void requestHeaderModifierSetsAddsAndRemoves() {
        MeshModel m = model(httpRoute("h",
                """
                          rules:
                          - filters:
                            - type: RequestHeaderModifier
                              requestHeaderModifier:
                                set: [{name: X-Set, value: one}]
                                add: [{name: X-Add, value: two}]
                                remove: [X-Gone]
                            backendRefs:
                            - name: reviews-v2
                              port: 9080
                              filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-backend, value: v2}]}}]
                        """));
        RouteDecision d = decide(m, request("GET /", "x-set: old", "x-set: older", "x-add: first", "x-gone: a",
                "x-keep: k"));
        assertThat(d.requestHeaders()).containsExactly(new Header("x-add", "first"), new Header("x-keep", "k"),
                new Header("x-set", "one"), new Header("x-add", "two"), new Header("x-backend", "v2"));
    }

    @ParameterizedTest(name = "{0} -> {2}")
    @CsvSource(delimiter = '|', textBlock = """
            /prefix/one | /one | /prefix/one/two | /one/two
            /prefix/one | /one | /prefix/one     | /one
            /strip      | /    | /strip/x        | /x
            /strip      | /    | /strip          | /
            /strip/     | /    | /strip/x/y      | /x/y
            /foo        | /bar/ | /foo/x         | /bar/x
            """)
    void urlRewriteReplacesThePrefixMatch(String prefix, String replacement, String path, String expected) {
        MeshModel m = model(httpRoute("rw",
                """
                          rules:
                          - matches: [{path: {type: PathPrefix, value: %s}}]
                            filters: [{type: URLRewrite, urlRewrite: {hostname: v2.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: %s}}}]
                            backendRefs: [{name: reviews-v2, port: 9080}]
                        """
                        .formatted(prefix, replacement)));
        RouteDecision d = decide(m, request("GET " + path + "?q=1"));
        assertThat(d.path()).isEqualTo(expected + "?q=1");
        assertThat(d.host()).isEqualTo("v2.example");
    }

    @Test
    void urlRewriteReplacesTheFullPath() {
        MeshModel m = model(httpRoute("rw", """
                  rules:
                  - filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /fixed}}}]
                    backendRefs: [{name: reviews-v2, port: 9080}]
                """));
        RouteDecision d = decide(m, request("GET /any/thing"));
        assertThat(d.path()).isEqualTo("/fixed");
        assertThat(d.host()).isEqualTo("reviews.shop.svc.cluster.local:9080");
    }

    @ParameterizedTest(name = "{0} -> {1} {2}")
    @CsvSource(delimiter = '|', textBlock = """
            {}                                                        | 302 | http://reviews.shop.svc.cluster.local:9080/old/page?x=1
            {statusCode: 301, hostname: new.example}                  | 301 | http://new.example:9080/old/page?x=1
            {scheme: https}                                           | 302 | https://reviews.shop.svc.cluster.local/old/page?x=1
            {scheme: http, port: 80}                                  | 302 | http://reviews.shop.svc.cluster.local/old/page?x=1
            {scheme: https, port: 8443}                               | 302 | https://reviews.shop.svc.cluster.local:8443/old/page?x=1
            {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}} | 302 | http://reviews.shop.svc.cluster.local:9080/new/page?x=1
            {path: {type: ReplaceFullPath, replaceFullPath: /}}          | 302 | http://reviews.shop.svc.cluster.local:9080/?x=1
            """)
    void requestRedirectLocation(String redirect, int status, String location) {
        MeshModel m = model(httpRoute("redir", """
                  rules:
                  - matches: [{path: {type: PathPrefix, value: /old}}]
                    filters: [{type: RequestRedirect, requestRedirect: %s}]
                """.formatted(redirect)));
        RouteDecision d = decide(m, request("GET /old/page?x=1"));
        assertThat(d.status()).isEqualTo(status);
        assertThat(d.location()).isEqualTo(location);
        assertThat(d.backend()).isNull();
        assertThat(d.path()).isNull();
    }

    @Test
    void mirrorsTimeoutsAndRetriesTravelWithTheDecision() {
        MeshModel m = model(httpRoute("m",
                """
                          rules:
                          - filters:
                            - {type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}}}
                            - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-served-by, value: waypoint}]}}
                            backendRefs: [{name: reviews-v1, port: 9080}]
                            timeouts: {request: 1m30s, backendRequest: 500ms}
                            retry: {codes: [503, 502], attempts: 3, backoff: 100ms}
                        """));
        RouteDecision d = decide(m, request("GET /"));
        assertThat(d.mirrors()).extracting(b -> b.display()).containsExactly("shop/reviews-v2:9080");
        assertThat(d.responseModifiers()).hasSize(1);
        assertThat(d.timeouts().request()).hasSeconds(90);
        assertThat(d.timeouts().backendRequest()).hasMillis(500);
        assertThat(d.retry().codes()).containsExactly(503, 502);
        assertThat(d.retry().attempts()).isEqualTo(3);
        assertThat(d.retry().backoff()).hasMillis(100);
    }

    @Test
    void hostnamesNarrowRoutesAndTheMostSpecificWins() {
        MeshModel m = model(httpRoute("wild", """
                  hostnames: ["*.shop.svc.cluster.local"]
                  rules:
                  - backendRefs: [{name: reviews-v1, port: 9080}]
                """), httpRoute("exact", """
                  hostnames: [reviews.shop.svc.cluster.local]
                  rules:
                  - backendRefs: [{name: reviews-v2, port: 9080}]
                """), httpRoute("elsewhere", """
                  hostnames: [reviews.example]
                  rules:
                  - matches: [{path: {type: Exact, value: /x}}]
                    backendRefs: [{name: reviews-v2, port: 9080}]
                """));
        RouteDecision d = decide(m, request("GET /x"));
        assertThat(d.route().name()).isEqualTo("exact");
    }

    @Test
    void grpcRoutesTakeGrpcCallsByTheirOwnPrecedenceAndNeverMixWithHttpRoutes() {
        String grpc = RouteFixtures.GRPC_ROUTE;
        MeshModel m = model(grpc, httpRoute("http", """
                  rules:
                  - matches: [{path: {type: Exact, value: /shop.Reviews/List}}]
                    backendRefs: [{name: reviews, port: 9080}]
                """));
        String ct = "content-type: application/grpc+proto";
        assertThat(decide(m, request("POST /shop.Reviews/List", ct)).rule()).isEqualTo(2);
        assertThat(decide(m, request("POST /shop.Reviews/Watch", ct)).rule()).isEqualTo(1);
        assertThat(decide(m, request("POST /other.Svc/List", ct)).rule()).isEqualTo(0);
        assertThat(decide(m, request("POST /shop.Ratings/GetOne", ct, "x-a: 1")).rule()).isEqualTo(3);
        assertThat(decide(m, request("POST /other.Svc/Watch", ct)).status()).as("no GRPCRoute rule: 404, no "
                + "fallback to HTTPRoutes").isEqualTo(404);
        RouteDecision http = decide(m, request("POST /shop.Reviews/List"));
        assertThat(http.route().kind()).isEqualTo("HTTPRoute");
    }

    @Test
    void aConsumerRouteReplacesTheProducerRoutesForCallersInItsNamespace() {
        MeshModel m = model(httpRoute("producer", """
                  rules:
                  - backendRefs: [{name: reviews-v1, port: 9080}]
                """), """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: consumer, namespace: front}
                spec:
                  parentRefs: [{kind: Service, group: "", name: reviews, namespace: shop}]
                  rules:
                  - matches: [{path: {type: Exact, value: /only}}]
                """);
        RouteEngine e = RouteEngine.of(m);
        assertThat(e.decide(REVIEWS, "front", request("GET /only"), new Random(1)).route().name())
                .isEqualTo("consumer");
        assertThat(e.decide(REVIEWS, "front", request("GET /else"), new Random(1)).status()).isEqualTo(404);
        assertThat(e.decide(REVIEWS, "other", request("GET /else"), new Random(1)).route().name())
                .isEqualTo("producer");
    }
}
