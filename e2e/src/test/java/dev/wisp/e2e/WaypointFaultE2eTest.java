package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.base.Closing;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.ConfigYaml;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpVersion;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fault injection end to end in a local mesh: two {@code wisp.dev/v1alpha1 HTTPFault}s named by
 * ExtensionRef filters of one HTTPRoute attached to {@code echo} (node 2), served by the control plane
 * as Envoy's fault filter configuration and applied by {@code wisp waypoint} (an uncaptured pod on
 * node 1); this JVM tunnels a client's calls to the waypoint as node 1's agent would ({@link
 * WaypointClient}). A 100 % abort answers 503 and the backend never sees the request; a 300 ms delay
 * holds the request at least that long before the backend answers it; a {@code LocalRateLimit} of
 * three tokens a day lets exactly three calls through to the backend and answers the next ones 429;
 * an abort with {@code grpcStatus: 14} answers an h2c gRPC call HTTP 200 with {@code grpc-status: 14}.
 * The same pod behind a second Service, {@code echo-h1}, whose port says {@code appProtocol: http}:
 * an HTTP/2 client reaches that HTTP/1.1-only backend (the waypoint speaks HTTP/1.1 to it).
 */
class WaypointFaultE2eTest {
    /** Cluster name and address base; {@code -Dwisp.wp.cluster}/{@code -Dwisp.wp.base} run it beside another copy. */
    static final String CLUSTER = System.getProperty("wisp.wp.cluster", "wpf");
    static final int BASE = Integer.getInteger("wisp.wp.base", 252);
    static final String CONFIG = ConfigYaml.documents(ConfigYaml.httpFault("broken", "default",
            "abort: {httpStatus: 503, percentage: 100}"),
            ConfigYaml.httpFault("slow", "default",
                    "delay: {fixedDelay: 300ms}"),
            ConfigYaml.httpFault("unavailable", "default",
                    "abort: {grpcStatus: 14, percentage: 100}"),
            ConfigYaml.localRateLimit("three", "default", 3,
                    "24h"),
            ConfigYaml.httpRouteHead("faults", "default", "echo", 80)
                    + """
                              rules:
                              - matches: [{path: {type: PathPrefix, value: /abort}}]
                                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: broken}}]
                                backendRefs: [{name: echo, port: 80}]
                              - matches: [{path: {type: PathPrefix, value: /delay}}]
                                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: slow}}]
                                backendRefs: [{name: echo, port: 80}]
                              - matches: [{path: {type: PathPrefix, value: /wisp.Faulty}}]
                                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: unavailable}}]
                                backendRefs: [{name: echo, port: 80}]
                              - matches: [{path: {type: PathPrefix, value: /limited}}]
                                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: LocalRateLimit, name: three}}]
                                backendRefs: [{name: echo, port: 80}]
                            """);
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static WaypointClient.Session session;
    static Path echoLog;

    @BeforeAll
    static void up() throws Exception {
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(BASE).pod(WaypointClient.pod())
                .pod(new ClusterSpec.PodSpec("echo", "default", "echo", 1, Map.of("app", "echo"))).build();
        mesh = PodApps.up(MeshSpec.builder(cluster).workDir(dir)
                .service(WaypointE2eTest.service(cluster, "echo", 1, Map.of("app", "echo"))));
        echoLog = mesh.startInPodLogged("echo", PodApps.java(PodHttpBackend.class, "echo", "8080"));
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(PodApps.read(echoLog))
                .contains("listening"));
        mesh.apply("faults.yaml", CONFIG);
        // echo's pod once more, behind a Service whose port says HTTP/1.1 (appProtocol), at the second VIP.
        mesh.apply("echo-h1.yaml", """
                apiVersion: v1
                kind: Service
                metadata: {name: echo-h1, namespace: default}
                spec:
                  selector: {app: echo}
                  clusterIP: %s
                  ports: [{name: web, port: 80, targetPort: 8080, appProtocol: http}]
                """.formatted(LocalMesh.serviceAddress(cluster, 2)));
        session = WaypointClient.Session.start(mesh, 1, "echo.default.svc.cluster.local");
        // The waypoint has the route once a probe is aborted (before, it went to echo: a path of its own).
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                .until(() -> session.tunnel().call("GET", "/abort/probe", Map.of()).startsWith("503 "));
    }

    @AfterAll
    static void down() throws Exception {
        Closing.inOrder(session, () -> PodApps.down(mesh, CLUSTER));
    }

    @Test
    void aHundredPercentAbortAnswersItsStatusAndTheBackendNeverSeesTheRequest() throws Exception {
        for (int i = 0; i < 5; i++) {
            assertThat(session.tunnel().call("GET", "/abort/call-" + i, Map.of()))
                    .isEqualTo("503 aborted by the route's fault filter");
        }
        // The waypoint logged every abort with the route; the backend got none of them.
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(PodApps.read(session.waypointLog()))
                .contains("path=\"/abort/call-4\" status=503")
                .contains("route=HTTPRoute/default/faults/rule/0/match/0"));
        assertThat(PodApps.read(echoLog)).doesNotContain("/abort/call-");
    }

    @Test
    void aDelayOf300msHoldsTheRequestThenTheBackendAnswersIt() throws Exception {
        for (int i = 0; i < 3; i++) {
            long start = System.nanoTime();
            String answer = session.tunnel().call("GET", "/delay/call-" + i, Map.of());
            long ms = Duration.ofNanos(System.nanoTime() - start).toMillis();
            assertThat(answer).isEqualTo("200 echo GET /delay/call-" + i);
            assertThat(ms).as("call %d", i).isBetween(300L, 15_000L);
        }
    }

    @Test
    void aLimitOfThreeTokensLetsExactlyThreeCallsThroughThenAnswers429() throws Exception {
        for (int i = 0; i < 3; i++) {
            assertThat(session.tunnel().call("GET", "/limited/call-" + i, Map.of()))
                    .isEqualTo("200 echo GET /limited/call-" + i);
        }
        for (int i = 3; i < 6; i++) {
            assertThat(session.tunnel().call("GET", "/limited/call-" + i, Map.of()))
                    .isEqualTo("429 local_rate_limited");
        }
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(PodApps.read(session.waypointLog()))
                .contains("path=\"/limited/call-5\" status=429"));
        // The backend logged each call it answered: exactly the three the bucket let through.
        String echo = PodApps.read(echoLog);
        assertThat(echo.lines().map(String::strip).filter(l -> l.contains("/limited/call-"))).containsExactly(
                "request echo GET /limited/call-0", "request echo GET /limited/call-1",
                "request echo GET /limited/call-2");
    }
    @Test
    void aGrpcStatusAbortAnswersAGrpcCallTrailersOnlyWithThatStatus() throws Exception {
        try (WaypointClient.H2Tunnel h2 = session.client().openH2(vip(1), "echo.default.svc.cluster.local")) {
            FullHttpRequest call = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST,
                    "/wisp.Faulty/Call", Unpooled.wrappedBuffer(new byte[5])); // one empty gRPC message
            call.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/grpc").set(HttpHeaderNames.TE, "trailers");
            FullHttpResponse r = h2.send(call);
            try {
                // Envoy's answer to a gRPC-status abort: HTTP 200, trailers-only, grpc-status 14 (UNAVAILABLE).
                assertThat(r.status().code()).isEqualTo(200);
                String status = r.headers().contains("grpc-status")
                        ? r.headers().get("grpc-status")
                        : r.trailingHeaders().get("grpc-status");
                assertThat(status).isEqualTo("14");
            } finally {
                r.release();
            }
        }
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(PodApps.read(session.waypointLog()))
                .contains("path=\"/wisp.Faulty/Call\" status=200"));
        assertThat(PodApps.read(echoLog)).doesNotContain("/wisp.Faulty/");
    }

    @Test
    void anHttp2ClientReachesAnHttp11OnlyBackendWhoseServicePortSaysHttp() throws Exception {
        // echo is a JDK HttpServer (HTTP/1.1 only); echo-h1's port says appProtocol: http, so the waypoint
        // speaks HTTP/1.1 to it whatever the client spoke.
        WaypointClient.H2Tunnel h2 = await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                .ignoreExceptions().until(() -> session.client().openH2(vip(2), "echo-h1.default.svc.cluster.local"),
                        t -> t != null);
        try (h2) {
            // The waypoint serves the new Service once its route, cluster and endpoints came.
            await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200)).until(() -> get(h2,
                    "/h2-to-h1/probe").startsWith("200 "));
            for (int i = 0; i < 3; i++) {
                assertThat(get(h2, "/h2-to-h1/call-" + i)).isEqualTo("200 echo GET /h2-to-h1/call-" + i);
            }
        }
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(PodApps.read(session.waypointLog()))
                .contains("path=\"/h2-to-h1/call-2\" status=200"));
        assertThat(PodApps.read(echoLog)).contains("request echo GET /h2-to-h1/call-2");
    }

    /** GET {@code path} on its own stream: "status body". */
    static String get(WaypointClient.H2Tunnel h2, String path) throws Exception {
        FullHttpResponse r = h2.send(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, path));
        try {
            return r.status().code() + " " + r.content().toString(StandardCharsets.UTF_8).strip();
        } finally {
            r.release();
        }
    }

    static InetSocketAddress vip(int service) {
        return new InetSocketAddress(InetAddress.ofLiteral(LocalMesh.serviceAddress(mesh.cluster().spec(), service)),
                80);
    }
}
