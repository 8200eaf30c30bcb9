package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.cli.route.RouteCommand;
import dev.wisp.testing.ConfigYaml;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code wisp route check}: the JSON contract, the exit codes and refused input. */
class RouteCheckCommandTest {
    static final String SERVICES = ConfigYaml.documents(
            ConfigYaml.pod("reviews-1", "shop", "app: reviews, version: v1", "node-a", "reviews", "10.1.1.5"),
            ConfigYaml.pod("reviews-2", "shop", "app: reviews, version: v2", "node-a", "reviews", "10.1.1.6"),
            service("reviews", "app: reviews"), service("reviews-v1", "version: v1"),
            service("reviews-v2", "version: v2"), service("empty", "app: none"));
    static final String ROUTES = ConfigYaml.httpRouteHead("reviews", "shop", "reviews", 9080)
            + """
                    rules:
                    - matches: [{headers: [{name: x-version, value: v2}]}]
                      filters:
                      - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Routed, value: "yes"}], remove: [x-drop]}}
                      - {type: RequestMirror, requestMirror: {backendRef: {name: reviews-v1, port: 9080}}}
                      backendRefs: [{name: reviews-v2, port: 9080}]
                    - matches: [{path: {type: PathPrefix, value: /old}}]
                      filters: [{type: RequestRedirect, requestRedirect: {hostname: new.example, statusCode: 301}}]
                    - matches: [{path: {type: PathPrefix, value: /api}}]
                      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v1}}}]
                      backendRefs: [{name: reviews-v1, port: 9080}]
                    - matches: [{path: {type: Exact, value: /split}}]
                      backendRefs: [{name: reviews-v1, port: 9080, weight: 80}, {name: reviews-v2, port: 9080, weight: 20}]
                    - matches: [{path: {type: Exact, value: /broken}}]
                      backendRefs: [{name: missing, port: 9080}]
                    - matches: [{path: {type: Exact, value: /empty}}]
                      backendRefs: [{name: empty, port: 9080}]
                    - matches: [{path: {type: Exact, value: /faulty}}]
                      filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: teapot}}]
                      backendRefs: [{name: reviews-v1, port: 9080}]
                    - matches: [{path: {type: Exact, value: /limited}}]
                      filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: LocalRateLimit, name: ten}}]
                      backendRefs: [{name: reviews-v1, port: 9080}]
                    """
                    .indent(2)
            + "---\n" + ConfigYaml.documents(ConfigYaml.httpFault("teapot", "shop",
                    "delay: {fixedDelay: 250ms}, abort: {httpStatus: 418}"),
                    ConfigYaml.localRateLimit("ten", "shop",
                            10, "2s"));
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    static String service(String name, String selector) {
        return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: shop}\n"
                + "spec: {selector: {" + selector + "}, ports: [{port: 9080}]}\n";
    }

    WispTest.Run check(String... args) throws IOException {
        Path services = dir.resolve("services.yaml");
        Path routes = dir.resolve("routes.yaml");
        Files.writeString(services, SERVICES);
        Files.writeString(routes, ROUTES);
        List<String> all = new ArrayList<>(List.of("route", "check", "-f", services.toString(), "-f",
                routes.toString(), "--to", "shop/reviews:9080", "-o", "json"));
        all.addAll(List.of(args));
        return WispTest.run(all.toArray(String[]::new));
    }

    static JsonNode json(WispTest.Run r) throws IOException {
        return JSON.readTree(r.out());
    }

    @Test
    void aHeaderMatchForwardsWithTheFiltersApplied() throws IOException {
        WispTest.Run r = check("--request", "GET /reviews/1?x=2", "--header", "X-Version: v2", "--header",
                "X-Drop: a", "--header", "Accept: text/plain");
        assertThat(r.exit()).as(r.err()).isEqualTo(RouteCommand.FORWARDED);
        JsonNode j = json(r);
        assertThat(j.toString()).isEqualTo("""
                {"status":200,"route":"shop/reviews","rule":0,"backend":"shop/reviews-v2:9080",\
                "path":"/reviews/1?x=2","host":"reviews.shop.svc.cluster.local:9080",\
                "requestHeaders":{"x-version":"v2","accept":"text/plain","x-routed":"yes"},\
                "location":null,"mirrors":["shop/reviews-v1:9080"]}""");
        assertThat(r.err()).contains("forwarded by HTTPRoute shop/reviews rule 0");
    }

    @Test
    void aPrefixRewriteAndAHostHeader() throws IOException {
        WispTest.Run r = check("--request", "POST /api/items", "--header", "Host: reviews");
        JsonNode j = json(r);
        assertThat(r.exit()).isEqualTo(RouteCommand.FORWARDED);
        assertThat(j.get("path").asText()).isEqualTo("/v1/items");
        assertThat(j.get("host").asText()).isEqualTo("reviews");
        assertThat(j.get("rule").asInt()).isEqualTo(2);
        assertThat(j.get("backend").asText()).isEqualTo("shop/reviews-v1:9080");
        assertThat(j.get("requestHeaders").size()).isZero();
    }

    @Test
    void aRedirectAnswersWithItsLocationAndExitsOne() throws IOException {
        WispTest.Run r = check("--request", "GET /old/page?a=b");
        assertThat(r.exit()).isEqualTo(RouteCommand.NOT_FORWARDED);
        JsonNode j = json(r);
        assertThat(j.get("status").asInt()).isEqualTo(301);
        assertThat(j.get("location").asText()).isEqualTo("http://new.example:9080/old/page?a=b");
        assertThat(j.get("backend").isNull()).isTrue();
        assertThat(j.get("path").isNull()).isTrue();
    }

    @Test
    void notFoundInvalidBackendAndNoEndpoints() throws IOException {
        WispTest.Run none = check("--request", "GET /nothing");
        assertThat(none.exit()).isEqualTo(RouteCommand.NOT_FORWARDED);
        assertThat(json(none).get("status").asInt()).isEqualTo(404);
        assertThat(json(none).get("route").isNull()).isTrue();
        assertThat(json(none).get("rule").isNull()).isTrue();
        WispTest.Run broken = check("--request", "GET /broken");
        assertThat(json(broken).get("status").asInt()).isEqualTo(500);
        assertThat(json(broken).get("route").asText()).isEqualTo("shop/reviews");
        assertThat(broken.exit()).isEqualTo(RouteCommand.NOT_FORWARDED);
        WispTest.Run empty = check("--request", "GET /empty");
        assertThat(json(empty).get("status").asInt()).isEqualTo(503);
        assertThat(empty.err()).contains("shop/empty:9080 has no ready endpoint");
        WispTest.Run faulty = check("--request", "GET /faulty");
        assertThat(json(faulty).get("status").asInt()).isEqualTo(418);
        assertThat(json(faulty).get("delayMs").asLong()).isEqualTo(250);
        assertThat(json(faulty).get("backend").isNull()).isTrue();
        assertThat(faulty.err()).contains("aborted by HTTPFault shop/teapot of ");
        assertThat(faulty.exit()).isEqualTo(RouteCommand.NOT_FORWARDED);
        assertThat(json(faulty).has("rateLimit")).as("only for a rule naming a LocalRateLimit").isFalse();
    }

    @Test
    void aRateLimitedRuleIsReportedWithItsBucket() throws IOException {
        WispTest.Run r = check("--request", "GET /limited");
        assertThat(r.exit()).isEqualTo(RouteCommand.FORWARDED);
        JsonNode limit = json(r).get("rateLimit");
        assertThat(limit.get("name").asText()).isEqualTo("shop/ten");
        assertThat(limit.get("tokens").asInt()).isEqualTo(10);
        assertThat(limit.get("tokensPerFill").asInt()).isEqualTo(1);
        assertThat(limit.get("fillIntervalMs").asLong()).isEqualTo(2000);
        assertThat(r.err()).contains("rate limited by LocalRateLimit shop/ten");
    }

    @Test
    void sampleCountsTheBackendsOfAWeightedSplit() throws IOException {
        WispTest.Run r = check("--request", "GET /split", "--sample", "1000", "--seed", "7");
        assertThat(r.exit()).isEqualTo(RouteCommand.FORWARDED);
        JsonNode backends = json(r).get("backends");
        assertThat(backends.get("shop/reviews-v1:9080").asInt() + backends.get("shop/reviews-v2:9080").asInt())
                .isEqualTo(1000);
        assertThat(backends.get("shop/reviews-v2:9080").asInt()).isBetween(150, 250);
        assertThat(backends.size()).isEqualTo(2);
        WispTest.Run again = check("--request", "GET /split", "--sample", "1000", "--seed", "7");
        assertThat(again.out()).as("a seed repeats the draws").isEqualTo(r.out());
        WispTest.Run plain = check("--request", "GET /split");
        assertThat(json(plain).has("backends")).as("backends only with --sample").isFalse();
    }

    @Test
    void refusedInputExitsTwoAndNamesTheFault() throws IOException {
        Path bad = dir.resolve("bad.yaml");
        Files.writeString(bad, ROUTES.replace("statusCode: 301", "statusCode: 303"));
        WispTest.Run r = WispTest.run("route", "check", "-f", bad.toString(), "--to", "shop/reviews:9080",
                "--request", "GET /");
        assertThat(r.exit()).isEqualTo(UserException.INVALID);
        assertThat(r.err()).contains(bad + ":13 HTTPRoute shop/reviews: spec.rules[1].filters[0].requestRedirect"
                + ".statusCode: '303' is not 301 or 302");
        assertThat(r.out()).isEmpty();
        assertThat(check("--request", "GET /", "--header", "no colon").exit()).isEqualTo(UserException.INVALID);
        assertThat(check("--request", "/just-a-path").exit()).isEqualTo(UserException.INVALID);
        WispTest.Run unknown = WispTest.run("route", "check", "-f", dir.resolve("bad.yaml").toString(), "--to",
                "shop/nope:80", "--request", "GET /");
        assertThat(unknown.exit()).isEqualTo(UserException.INVALID);
        Path services = dir.resolve("services.yaml");
        WispTest.Run wrongTarget = WispTest.run("route", "check", "-f", services.toString(), "--to",
                "shop/nope:9080", "--request", "GET /");
        assertThat(wrongTarget.exit()).isEqualTo(UserException.INVALID);
        assertThat(wrongTarget.err()).contains("no Service shop/nope in the configuration");
    }
}
