package dev.wisp.controlplane.envoy;

import static dev.wisp.controlplane.route.RouteFixtures.httpRoute;
import static dev.wisp.controlplane.route.RouteFixtures.model;
import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.HeaderModifier;
import dev.wisp.controlplane.route.HttpRequest;
import dev.wisp.controlplane.route.HttpRequest.Header;
import dev.wisp.controlplane.route.RouteDecision;
import dev.wisp.controlplane.route.RouteEngine;
import dev.wisp.controlplane.route.RouteFixtures;
import dev.wisp.waypoint.route.EnvoyRoutes;
import dev.wisp.waypoint.route.EnvoyRoutes.Decision;
import dev.wisp.waypoint.route.RouteActions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * One semantics for the Gateway API filters: for each route and request, what {@code wisp route check}
 * says ({@link RouteEngine}) equals what the waypoint does with the Envoy routes the control plane
 * translates the same route into ({@link EnvoyRoutes} and {@link RouteActions}): the status, the
 * backend, the path and host sent upstream, the request headers after the filters, a redirect's
 * {@code Location}, the mirrors and the response headers. Each row also states the expected value, so
 * both sides agreeing on a wrong answer fails too.
 */
class WaypointAgreementTest {
    static final String FILTERS = """
              rules:
              - matches: [{path: {value: /api}}]
                filters:
                - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: "1"}], add: [{name: x-b, value: "2"}], remove: [x-c]}}
                - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-r, value: "3"}], remove: [server]}}
                - {type: URLRewrite, urlRewrite: {hostname: v2.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}
                - {type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}}}
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{path: {value: /strip/}}]
                filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{path: {type: Exact, value: /full}}]
                filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: "/fixed$1\\\\1"}}}]
                backendRefs: [{name: reviews-v1, port: 9080}]
              - matches: [{path: {type: Exact, value: /old}}]
                filters: [{type: RequestRedirect, requestRedirect: {hostname: new.example, statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /new}}}]
              - matches: [{path: {value: /moved}}]
                filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /here}}}]
              - matches: [{path: {value: /secure}}]
                filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]
              - matches: [{path: {value: /port}}]
                filters: [{type: RequestRedirect, requestRedirect: {scheme: http, port: 8443, hostname: h.example}}]
              - matches: [{path: {value: /bad}}]
                backendRefs: [{name: nowhere, port: 9080}]
              - matches: [{path: {value: /per-backend}}]
                filters:
                - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-rule, value: r}, {name: x-both, value: rule}]}}
                - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-r, value: rule}]}}
                backendRefs:
                - name: reviews-v2
                  port: 9080
                  filters:
                  - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-both, value: backend}], add: [{name: x-rule, value: b}], remove: [x-c]}}
                  - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-r, value: backend}]}}
            """;

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("GET /api/x?q=1", List.of("x-c: gone", "x-b: 0"),
                        "200 shop/reviews-v1:9080 /v2/x?q=1 v2.example x-a=[1] x-b=[0, 2] mirrors=[shop/reviews-v2:9080] "
                                + "response={x-r=[3]}"),
                Arguments.of("GET /api", List.of(), "200 shop/reviews-v1:9080 /v2 v2.example x-a=[1] x-b=[2] "
                        + "mirrors=[shop/reviews-v2:9080] response={x-r=[3]}"),
                Arguments.of("GET /apix", List.of(), "404"),
                Arguments.of("GET /strip/a/b", List.of(), "200 shop/reviews-v1:9080 /a/b "
                        + "reviews.shop.svc.cluster.local:9080 mirrors=[] response={server=[s]}"),
                Arguments.of("GET /strip", List.of(), "200 shop/reviews-v1:9080 / "
                        + "reviews.shop.svc.cluster.local:9080 mirrors=[] response={server=[s]}"),
                Arguments.of("GET /full?k=v", List.of(), "200 shop/reviews-v1:9080 /fixed$1\\1?k=v "
                        + "reviews.shop.svc.cluster.local:9080 mirrors=[] response={server=[s]}"),
                Arguments.of("GET /old?a=b", List.of(), "301 location=http://new.example:9080/new?a=b"),
                Arguments.of("GET /moved/deep/er", List.of(),
                        "302 location=http://reviews.shop.svc.cluster.local:9080/here/deep/er"),
                Arguments.of("GET /moved", List.of(), "302 location=http://reviews.shop.svc.cluster.local:9080/here"),
                Arguments.of("GET /secure/x", List.of(),
                        "302 location=https://reviews.shop.svc.cluster.local/secure/x"),
                Arguments.of("GET /port", List.of(), "302 location=http://h.example:8443/port"),
                Arguments.of("GET /bad", List.of(), "500"),
                Arguments.of("GET /per-backend", List.of("x-c: gone"), "200 shop/reviews-v2:9080 /per-backend "
                        + "reviews.shop.svc.cluster.local:9080 x-both=[backend] x-rule=[r, b] mirrors=[] "
                        + "response={server=[s], x-r=[rule, backend]}"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void routeCheckAndTheWaypointAgree(String line, List<String> headerLines, String expected) {
        assertAgree(model(httpRoute("f", FILTERS)), line, headerLines, expected);
    }

    static Stream<Arguments> grpcCases() {
        String ct = "content-type: application/grpc";
        String host = " reviews.shop.svc.cluster.local:9080 ";
        return Stream.of(
                Arguments.of("POST /shop.Reviews/List", List.of(ct), "200 shop/reviews-v2:9080 /shop.Reviews/List"
                        + host + "content-type=[application/grpc] mirrors=[] response={server=[s]}"),
                Arguments.of("POST /shop.Reviews/Watch", List.of("content-type: application/grpc+proto"),
                        "200 shop/reviews-v1:9080 /shop.Reviews/Watch" + host
                                + "content-type=[application/grpc+proto] mirrors=[] response={server=[s]}"),
                Arguments.of("POST /other.Svc/List", List.of(ct), "200 shop/reviews-v1:9080 /other.Svc/List" + host
                        + "content-type=[application/grpc] mirrors=[] response={server=[s]}"),
                Arguments.of("POST /shop.Ratings/GetOne", List.of(ct, "x-a: 1"), "200 shop/reviews-v2:9080 "
                        + "/shop.Ratings/GetOne" + host + "content-type=[application/grpc] x-a=[1] mirrors=[] "
                        + "response={server=[s]}"),
                Arguments.of("POST /shop.Ratings/GetOne", List.of(ct), "404"),
                Arguments.of("POST /other.Svc/Watch", List.of(ct), "404"),
                // Not gRPC: the HTTPRoute, never the GRPCRoute.
                Arguments.of("POST /shop.Reviews/List", List.of(), "200 shop/reviews:9080 /shop.Reviews/List" + host
                        + "mirrors=[] response={server=[s]}"),
                Arguments.of("POST /shop.Reviews/Watch", List.of("content-type: text/plain"), "404"));
    }

    /** {@link RouteFixtures#GRPC_ROUTE} beside an HTTPRoute on the same service. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("grpcCases")
    void grpcMethodMatchesAgree(String line, List<String> headerLines, String expected) {
        assertAgree(model(RouteFixtures.GRPC_ROUTE, httpRoute("http", """
                  rules:
                  - matches: [{path: {type: Exact, value: /shop.Reviews/List}}]
                    backendRefs: [{name: reviews, port: 9080}]
                """)), line, headerLines, expected);
    }

    static void assertAgree(MeshModel m, String line, List<String> headerLines, String expected) {
        String[] parts = line.split(" ", 2);
        int q = parts[1].indexOf('?');
        String path = q < 0 ? parts[1] : parts[1].substring(0, q);
        String query = q < 0 ? "" : parts[1].substring(q + 1);
        String host = "reviews.shop.svc.cluster.local:9080";
        List<Header> headers = new ArrayList<>();
        Map<String, List<String>> waypointHeaders = new LinkedHashMap<>();
        waypointHeaders.put("host", new ArrayList<>(List.of(host)));
        for (String h : headerLines) {
            String[] nv = h.split(": ", 2);
            headers.add(new Header(nv[0], nv[1]));
            waypointHeaders.computeIfAbsent(nv[0], k -> new ArrayList<>()).add(nv[1]);
        }

        RouteDecision engine = RouteEngine.of(m).decide(new RouteEngine.Target("shop", "reviews", 9080), null,
                new HttpRequest(parts[0], path, query, host, headers), new Random(7));
        String byEngine = engine(engine);

        EnvoyResources resources = EnvoyTranslator.translate(m);
        Decision d = EnvoyRoutes.decide(EnvoyTranslatorTest.routeConfiguration(m).getVirtualHosts(0),
                new EnvoyRoutes.Request(parts[0], path, query, waypointHeaders), 0.5);
        String byWaypoint = waypoint(d, resources);

        assertThat(byWaypoint).as("the waypoint").isEqualTo(expected);
        assertThat(byEngine).as("wisp route check").isEqualTo(expected);
    }

    /** The response headers a backend sent, for the response modifiers to act on. */
    static Map<String, List<String>> backendResponse() {
        Map<String, List<String>> r = new TreeMap<>();
        r.put("server", new ArrayList<>(List.of("s")));
        return r;
    }

    static String engine(RouteDecision d) {
        if (d.location() != null) {
            return d.status() + " location=" + d.location();
        }
        if (!d.forwarded()) {
            return String.valueOf(d.status());
        }
        Map<String, List<String>> sent = new TreeMap<>();
        d.requestHeaders().forEach(h -> sent.computeIfAbsent(h.name(), k -> new ArrayList<>()).add(h.value()));
        Map<String, List<String>> response = backendResponse();
        for (HeaderModifier hm : d.responseModifiers()) {
            hm.remove().forEach(response::remove);
            hm.set().forEach((n, v) -> response.put(n, new ArrayList<>(List.of(v))));
            hm.add().forEach((n, v) -> response.computeIfAbsent(n, k -> new ArrayList<>()).add(v));
        }
        return forwarded(d.backend().display(), d.path(), d.host(), sent,
                d.mirrors().stream().map(BackendRef::display).toList(), response);
    }

    static String waypoint(Decision d, EnvoyResources resources) {
        return switch (d) {
            case Decision.Redirect r -> r.status() + " location=" + r.location();
            case Decision.Respond r -> String.valueOf(r.status());
            case Decision.Forward f -> {
                if (resources.clusters().stream().noneMatch(c -> c.getName().equals(f.cluster()))) {
                    yield "500";
                }
                Map<String, List<String>> sent = new TreeMap<>(f.upstream().headers());
                String host = sent.remove("host").getFirst();
                Map<String, List<String>> response = backendResponse();
                RouteActions.response(f.matched(), f.backend(), RouteActions.map(response));
                yield forwarded(display(f.cluster()), f.upstream().path(), host, sent,
                        RouteActions.mirrors(f.action(), () -> 0.5).stream().map(WaypointAgreementTest::display)
                                .toList(),
                        response);
            }
        };
    }

    /** {@code outbound|9080||reviews-v1.shop.svc.cluster.local} as {@code shop/reviews-v1:9080}. */
    static String display(String cluster) {
        String[] p = cluster.split("\\|");
        String[] host = p[3].split("\\.");
        return host[1] + "/" + host[0] + ":" + p[1];
    }

    static String forwarded(String backend, String path, String host, Map<String, List<String>> headers,
            List<String> mirrors, Map<String, List<String>> response) {
        StringBuilder b = new StringBuilder("200 ").append(backend).append(' ').append(path).append(' ').append(host);
        new TreeMap<>(headers).forEach((n, v) -> b.append(' ').append(n).append('=').append(v));
        return b.append(" mirrors=").append(mirrors).append(" response=").append(response).toString();
    }
}
