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
 * holds the request at least that long before the backend answers it.
 */
class WaypointFaultE2eTest {
    static final String CLUSTER = "wpf";
    static final String CONFIG = ConfigYaml.documents("""
            apiVersion: wisp.dev/v1alpha1
            kind: HTTPFault
            metadata: {name: broken, namespace: default}
            spec:
              abort: {httpStatus: 503, percentage: 100}
            """, """
            apiVersion: wisp.dev/v1alpha1
            kind: HTTPFault
            metadata: {name: slow, namespace: default}
            spec:
              delay: {fixedDelay: 300ms}
            """, ConfigYaml.httpRouteHead("faults", "default", "echo", 80) + """
              rules:
              - matches: [{path: {type: PathPrefix, value: /abort}}]
                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: broken}}]
                backendRefs: [{name: echo, port: 80}]
              - matches: [{path: {type: PathPrefix, value: /delay}}]
                filters: [{type: ExtensionRef, extensionRef: {group: wisp.dev, kind: HTTPFault, name: slow}}]
                backendRefs: [{name: echo, port: 80}]
            """);
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static WaypointClient client;
    static Path waypointLog;
    static Path echoLog;
    static WaypointClient.Tunnel tunnel;

    @BeforeAll
    static void up() throws Exception {
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(252).pod(WaypointClient.pod())
                .pod(new ClusterSpec.PodSpec("echo", "default", "echo", 1, Map.of("app", "echo"))).build();
        mesh = PodApps.up(MeshSpec.builder(cluster).workDir(dir)
                .service(WaypointE2eTest.service(cluster, "echo", 1, Map.of("app", "echo"))));
        echoLog = mesh.startInPodLogged("echo", PodApps.java(PodHttpBackend.class, "echo", "8080"));
        waypointLog = WaypointClient.startWaypoint(mesh);
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(PodApps.read(echoLog))
                .contains("listening"));
        mesh.apply("faults.yaml", CONFIG);
        client = WaypointClient.of(mesh);
        InetSocketAddress vip = new InetSocketAddress(InetAddress.ofLiteral(LocalMesh.serviceAddress(mesh.cluster()
                .spec(), 1)), 80);
        tunnel = client.open(vip, "echo.default.svc.cluster.local");
        // The waypoint has the route once a probe is aborted (before, it went to echo: a path of its own).
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                .until(() -> status("/abort/probe") == 503);
    }

    @AfterAll
    static void down() throws Exception {
        if (tunnel != null) {
            tunnel.close();
        }
        if (client != null) {
            client.close();
        }
        PodApps.down(mesh, CLUSTER);
    }

    static FullHttpResponse get(String uri) throws Exception {
        DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, uri);
        req.headers().set(HttpHeaderNames.HOST, "echo.default.svc.cluster.local");
        return tunnel.send(req);
    }

    static int status(String uri) throws Exception {
        FullHttpResponse r = get(uri);
        r.release();
        return r.status().code();
    }

    @Test
    void aHundredPercentAbortAnswersItsStatusAndTheBackendNeverSeesTheRequest() throws Exception {
        for (int i = 0; i < 5; i++) {
            FullHttpResponse r = get("/abort/call-" + i);
            try {
                assertThat(r.status().code()).isEqualTo(503);
                assertThat(r.content().toString(StandardCharsets.UTF_8))
                        .isEqualTo("aborted by the route's fault filter\n");
            } finally {
                r.release();
            }
        }
        // The waypoint logged every abort with the route; the backend got none of them.
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(PodApps.read(waypointLog))
                .contains("path=\"/abort/call-4\" status=503")
                .contains("route=HTTPRoute/default/faults/rule/0/match/0"));
        assertThat(PodApps.read(echoLog)).doesNotContain("/abort/call-");
    }

    @Test
    void aDelayOf300msHoldsTheRequestThenTheBackendAnswersIt() throws Exception {
        for (int i = 0; i < 3; i++) {
            long start = System.nanoTime();
            FullHttpResponse r = get("/delay/call-" + i);
            long ms = Duration.ofNanos(System.nanoTime() - start).toMillis();
            try {
                assertThat(r.status().code()).isEqualTo(200);
                assertThat(r.content().toString(StandardCharsets.UTF_8)).isEqualTo("echo GET /delay/call-" + i + "\n");
            } finally {
                r.release();
            }
            assertThat(ms).as("call %d", i).isBetween(300L, 15_000L);
        }
    }
}
