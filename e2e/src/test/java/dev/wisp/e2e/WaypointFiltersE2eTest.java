package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.ConfigYaml;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpVersion;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Gateway API filters applied by the waypoint end to end in a local mesh: {@code wisp waypoint}
 * in an uncaptured pod on node 1, the backend {@code echo} (and the mirror target {@code shadow}) on
 * node 2, one HTTPRoute attached to {@code echo}, read by the waypoint from the control plane's Envoy
 * xDS. This JVM plays node 1's agent tunnelling a client's calls to the waypoint ({@link
 * WaypointClient}). Each answer is checked to the byte: the path the backend got after a prefix
 * rewrite, a redirect's {@code Location}, 504 for a request timeout, retries hiding a backend that
 * fails every other request (attempts counted by the backend and in the waypoint's access log), and
 * header modifiers seen by the backend and the client, with a mirrored copy reaching {@code shadow}.
 */
class WaypointFiltersE2eTest {
    /** Cluster name and address base; {@code -Dwisp.wp.cluster}/{@code -Dwisp.wp.base} run it beside another copy. */
    static final String CLUSTER = System.getProperty("wisp.wp.cluster", "wpf1");
    static final int BASE = Integer.getInteger("wisp.wp.base", 100);
    static final String ROUTE = ConfigYaml.httpRouteHead("filters", "default", "echo", 80)
            + """
                    rules:
                    - matches: [{path: {type: PathPrefix, value: /old}}]
                      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new/v2}}}]
                      backendRefs: [{name: echo, port: 80}]
                    - matches: [{path: {type: Exact, value: /moved}}]
                      filters: [{type: RequestRedirect, requestRedirect: {hostname: elsewhere.example, statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /there}}}]
                    - matches: [{path: {type: PathPrefix, value: /slow}}]
                      timeouts: {request: 500ms}
                      backendRefs: [{name: echo, port: 80}]
                    - matches: [{path: {type: PathPrefix, value: /flaky}}]
                      retry: {codes: [503], attempts: 2, backoff: 10ms}
                      backendRefs: [{name: echo, port: 80}]
                    - matches: [{path: {type: PathPrefix, value: /headers}}]
                      filters:
                      - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-set, value: by-route}], add: [{name: x-added, value: "yes"}], remove: [x-drop]}}
                      - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-from-waypoint, value: "1"}], remove: [x-backend-only]}}
                      - {type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}}}
                      backendRefs: [{name: echo, port: 80}]
                    """
                    .indent(2);
    static final int FLAKY_CALLS = 20;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static WaypointClient.Session session;
    static Path waypointLog;
    static Path echoLog;
    static Path shadowLog;

    @BeforeAll
    static void up() throws Exception {
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(BASE).pod(WaypointClient.pod())
                .pod(new ClusterSpec.PodSpec("echo", "default", "echo", 1, Map.of("app", "echo")))
                .pod(new ClusterSpec.PodSpec("shadow", "default", "shadow", 1, Map.of("app", "shadow")))
                .build();
        mesh = PodApps.up(MeshSpec.builder(cluster).workDir(dir)
                .service(WaypointE2eTest.service(cluster, "echo", 1, Map.of("app", "echo")))
                .service(WaypointE2eTest.service(cluster, "shadow", 2, Map.of("app", "shadow"))));
        echoLog = mesh.startInPodLogged("echo", PodApps.java(PodHttpBackend.class, "echo", "8080"));
        shadowLog = mesh.startInPodLogged("shadow", PodApps.java(PodHttpBackend.class, "shadow", "8080"));
        for (Path log : List.of(echoLog, shadowLog)) {
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                    "listening"));
        }
        mesh.apply("route.yaml", ROUTE);
        session = WaypointClient.Session.start(mesh, 1, "echo.default.svc.cluster.local");
        waypointLog = session.waypointLog();
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(PodApps.read(waypointLog)).contains(
                "waypoint holds 2 route configurations, 2 clusters"));
    }

    @AfterAll
    static void down() throws Exception {
        if (session != null) {
            session.close();
        }
        PodApps.down(mesh, CLUSTER);
    }

    static FullHttpResponse get(String uri, String... headers) throws Exception {
        DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, uri);
        req.headers().set(HttpHeaderNames.HOST, "echo.default.svc.cluster.local");
        for (int i = 0; i < headers.length; i += 2) {
            req.headers().add(headers[i], headers[i + 1]);
        }
        return session.tunnel().send(req);
    }

    static String body(FullHttpResponse r) {
        return r.content().toString(StandardCharsets.UTF_8);
    }

    /** GETs {@code uri} and checks the answer's status and whole body. */
    static void assertAnswer(String uri, int status, String expectedBody) throws Exception {
        FullHttpResponse r = get(uri);
        try {
            assertThat(r.status().code()).as("%s: %s", uri, body(r)).isEqualTo(status);
            assertThat(body(r)).as(uri).isEqualTo(expectedBody);
        } finally {
            r.release();
        }
    }

    @Test
    void aPrefixRewriteSendsTheReplacedPathWholeSegmentsAndTheQueryKept() throws Exception {
        assertAnswer("/old/items/7?page=2", 200, "echo GET /new/v2/items/7?page=2\n");
        assertAnswer("/old", 200, "echo GET /new/v2\n");
    }

    @Test
    void aRedirectAnswersWithTheExactLocationAndReachesNoBackend() throws Exception {
        FullHttpResponse r = get("/moved?x=1");
        assertThat(r.status().code()).isEqualTo(301);
        assertThat(r.headers().get(HttpHeaderNames.LOCATION)).isEqualTo("http://elsewhere.example/there?x=1");
        r.release();
        assertThat(PodApps.read(echoLog)).doesNotContain("/moved").doesNotContain("/there");
    }

    @Test
    void aRequestTimeoutOf500msAgainstABackendWaitingOneSecondIs504() throws Exception {
        assertAnswer("/slow/x", 504, "no answer within 500 ms\n");
    }

    @Test
    void retriesTurnABackendFailingEveryOtherRequestIntoFullSuccess() throws Exception {
        for (int i = 0; i < FLAKY_CALLS; i++) {
            assertAnswer("/flaky/" + i, 200, "echo GET /flaky/" + i + "\n");
        }
        // Each call: a 503, then the retry's 200 — twice as many requests as calls at the backend,
        // and each call's access-log line says 2 attempts.
        Pattern atBackend = Pattern.compile("(?m)^request echo GET /flaky/");
        Pattern accessLine = Pattern.compile("(?m)method=GET path=\"/flaky/[0-9]+\" status=200 .* attempts=2 ");
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(atBackend.matcher(PodApps.read(echoLog)).results().count()).isEqualTo(2L * FLAKY_CALLS);
            assertThat(accessLine.matcher(PodApps.read(waypointLog)).results().count()).isEqualTo(FLAKY_CALLS);
        });
    }

    @Test
    void headerModifiersAreSeenByTheBackendAndTheClientAndAMirrorGetsACopy() throws Exception {
        FullHttpResponse r = get("/headers/a", "x-set", "from-client", "x-drop", "secret", "x-keep", "k");
        assertThat(r.status().code()).as(body(r)).isEqualTo(200);
        assertThat(body(r)).isEqualTo("echo GET /headers/a\nx-added: yes\nx-keep: k\nx-set: by-route\n");
        assertThat(r.headers().get("x-from-waypoint")).isEqualTo("1");
        assertThat(r.headers().contains("x-backend-only")).as("removed by the route").isFalse();
        r.release();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(PodApps.read(shadowLog))
                .contains("request shadow GET /headers/a"));
    }
}
