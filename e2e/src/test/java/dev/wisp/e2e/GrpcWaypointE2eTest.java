package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.InNetns;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * HTTP/2 and gRPC through the waypoint in a local mesh, on the path a captured pod's call takes: a
 * captured client pod on node 1 calls the service {@code grpc}'s cluster IP with a plaintext gRPC
 * channel (h2c, prior knowledge) and node 1's agent tunnels the connection to the waypoint, which
 * sees the HTTP/2 preface inside the tunnel and routes each stream by the {@code GRPCRoute}:
 * {@code demo.Echo/A} to the pod of v1, {@code demo.Echo/B} to v2 (both on node 2, over new HBONE
 * streams that speak HTTP/2 to the pods, trailers and all), and {@code demo.Echo/C}, which the pods
 * serve but no rule matches, is answered UNIMPLEMENTED by the waypoint. A plain HTTP/2 request
 * ({@code nghttp}, prior knowledge) to the service {@code web} takes the same path to the pods' HTTP/2
 * server. Streaming calls flow message by message: a server-streaming call's first message reaches the
 * client before its last is sent, and a bidi call in lock step (each message answered before the next
 * is sent) completes, which a waypoint reading calls whole could not do.
 */
class GrpcWaypointE2eTest {
    /** Cluster name and address base; {@code -Dwisp.wp.cluster}/{@code -Dwisp.wp.base} run it beside another copy. */
    static final String CLUSTER = System.getProperty("wisp.wp.cluster", "wph2");
    static final int BASE = Integer.getInteger("wisp.wp.base", 190);
    static final String ROUTE = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata: {name: methods, namespace: default}
            spec:
              parentRefs: [{kind: Service, group: "", name: grpc, port: 80}]
              rules:
              - matches: [{method: {service: demo.Echo, method: A}}]
                backendRefs: [{name: grpc-v1, port: 80}]
              - matches: [{method: {service: demo.Echo, method: B}}]
                backendRefs: [{name: grpc-v2, port: 80}]
              - matches: [{method: {service: demo.Echo, method: Stream}}]
                backendRefs: [{name: grpc-v1, port: 80}]
              - matches: [{method: {service: demo.Echo, method: Chat}}]
                backendRefs: [{name: grpc-v2, port: 80}]
            """;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static ClusterSpec cluster;
    static Path waypointLog;

    @BeforeAll
    static void up() throws Exception {
        cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(BASE).pod("client", "default", "client", 0)
                .pod(new ClusterSpec.PodSpec("g1", "default", "grpc", 1, Map.of("app", "grpc", "version", "v1")))
                .pod(new ClusterSpec.PodSpec("g2", "default", "grpc", 1, Map.of("app", "grpc", "version", "v2")))
                .build();
        mesh = PodApps.up(MeshSpec.builder(cluster).workDir(dir)
                .service(service("grpc", 1, Map.of("app", "grpc"), 8080))
                .service(service("grpc-v1", 2, Map.of("version", "v1"), 8080))
                .service(service("grpc-v2", 3, Map.of("version", "v2"), 8080))
                .service(service("web", 4, Map.of("app", "grpc"), 8081))
                .agentArg("--dns-upstream").agentArg("10.130.0.2:53"), "nghttp");
        for (String pod : List.of("g1", "g2")) {
            Path log = mesh.startInPodLogged(pod, PodApps.java(GrpcPodApp.class, "server", pod.equals("g1")
                    ? "v1"
                    : "v2", "8080", "8081"));
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                    "listening"));
        }
        mesh.apply("route.yaml", ROUTE);
        mesh.apply("waypoint.yaml", WaypointE2eTest.WAYPOINT);
        await().atMost(Duration.ofSeconds(60)).until(() -> mesh.waypointLog("default", "waypoint").isPresent());
        waypointLog = mesh.waypointLog("default", "waypoint").orElseThrow();
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> assertThat(PodApps.read(waypointLog)).contains(
                "waypoint waypoint ready on", "waypoint holds 4 route configurations"));
        String waypointId = mesh.spiffeId(mesh.waypointPod("default", "waypoint").orElseThrow().name());
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(mesh.agentAdmin("node1",
                "/config_dump")).contains(waypointId));
    }

    static MeshSpec.ServiceSpec service(String name, int i, Map<String, String> selector, int targetPort) {
        return new MeshSpec.ServiceSpec(name, "default", selector, LocalMesh.serviceAddress(cluster, i), 80,
                targetPort);
    }

    @AfterAll
    static void down() throws Exception {
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    void grpcCallsAreRoutedByMethodOverOneHttp2ConnectionAndAnUnmatchedMethodIsUnimplemented() throws Exception {
        List<String> methods = new ArrayList<>(List.of("client", LocalMesh.serviceAddress(cluster, 1) + ":80"));
        for (int i = 0; i < 10; i++) {
            methods.addAll(List.of("A", "B"));
        }
        methods.addAll(Collections.nCopies(3, "C"));
        // The other tests' calls are counted too: this one's are what it adds.
        String netns = mesh.waypointPod("default", "waypoint").orElseThrow().netns();
        String before = InNetns.httpGet(netns, 15020, "/metrics");
        List<String> lines = run(PodApps.java(GrpcPodApp.class, methods.toArray(String[]::new)));
        Map<String, Integer> got = new TreeMap<>();
        lines.stream().filter(l -> l.startsWith("call ")).forEach(l -> got.merge(l, 1, Integer::sum));
        assertThat(got).as("the client's calls (waypoint log:%n%s)", accessLines()).isEqualTo(Map.of(
                "call A ok v1 A hi", 10, "call B ok v2 B hi", 10,
                "call C failed UNIMPLEMENTED direct response", 3));

        // The waypoint saw HTTP/2 inside the tunnel and forwarded each routed call as gRPC (its
        // grpc-status trailer read back), answered the unmatched one itself.
        String access = accessLines();
        assertThat(count(access, routed("A"))).as(access).isEqualTo(10);
        assertThat(count(access, routed("B"))).as(access).isEqualTo(10);
        assertThat(count(access, "protocol=HTTP/2 method=POST path=\"/demo.Echo/C\" status=200 grpc_status=12 "
                + "route=grpc-no-route ")).as(access).isEqualTo(3);

        // Istio's request series count them as gRPC, by the status each client got.
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
            String metrics = InNetns.httpGet(netns, 15020, "/metrics");
            assertThat(List.of(requests(metrics, "0") - requests(before, "0"), requests(metrics, "12") - requests(
                    before, "12"))).as(metrics).isEqualTo(List.of(20.0, 3.0));
        });
    }

    @Test
    void aPlainHttp2RequestGoesThroughTheWaypoint() throws Exception {
        String out = String.join("\n", run(List.of("nghttp", "-v", "http://" + LocalMesh.serviceAddress(cluster, 4)
                + "/plain?x=1")));
        assertThat(out).as(out).contains(":status: 200").containsPattern("v[12] /plain\\?x=1 over HTTP/2");
        awaitAccessLine("protocol=HTTP/2 method=GET path=\"/plain?x=1\" status=200 grpc_status=- ");
    }

    @Test
    void aServerStreamingCallArrivesMessageByMessage() throws Exception {
        List<String> lines = callGrpc("stream", 4);
        String out = String.join("\n", lines);
        List<String> messages = lines.stream().filter(l -> l.startsWith("message ")).toList();
        assertThat(messages).as(out).hasSize(4);
        for (int i = 0; i < 4; i++) {
            assertThat(messages.get(i)).as(out).startsWith("message v1 Stream " + (i + 1) + " sent=");
        }
        assertThat(lines).as(out).contains("status OK");
        long first = Long.parseLong(lines.stream().filter(l -> l.startsWith("first-received=")).findFirst()
                .orElseThrow().substring("first-received=".length()));
        long lastSent = Long.parseLong(messages.getLast().substring(messages.getLast().indexOf("sent=") + 5));
        // The server sends the messages a second apart: the first came through before the last was sent.
        assertThat(first).as(out).isLessThan(lastSent);
        awaitAccessLine(routed("Stream"));
    }

    @Test
    void aBidiCallInLockStepCompletes() throws Exception {
        List<String> lines = callGrpc("chat", 5);
        assertThat(lines.stream().filter(l -> l.startsWith("reply ") || l.startsWith("no reply") || l.startsWith(
                "status "))).as(String.join("\n", lines)).containsExactly("reply v2 Chat m1", "reply v2 Chat m2",
                        "reply v2 Chat m3", "reply v2 Chat m4", "reply v2 Chat m5", "status OK");
        awaitAccessLine(routed("Chat"));
    }

    /** The waypoint's {@code istio_requests_total} of gRPC requests answered {@code grpcStatus}, summed. */
    static double requests(String metrics, String grpcStatus) {
        return metrics.lines().filter(l -> l.startsWith("istio_requests_total{") && l.contains(
                "request_protocol=\"grpc\"") && l.contains("grpc_response_status=\"" + grpcStatus + "\"")
                && l
                        .contains("response_code=\"200\""))
                .mapToDouble(l -> Double.parseDouble(l.substring(l
                        .lastIndexOf(' ') + 1)))
                .sum();
    }

    /** Runs {@code command} in the client pod to its end; its output lines. */
    static List<String> run(List<String> command) throws IOException, InterruptedException {
        Process p = mesh.startInPod("client", command);
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("%s ended", command).isTrue();
        return new String(out, StandardCharsets.UTF_8).lines().toList();
    }

    /** Runs {@link GrpcPodApp}'s {@code mode} call of {@code messages} messages in the client pod, to Service grpc. */
    static List<String> callGrpc(String mode, int messages) throws IOException, InterruptedException {
        return run(PodApps.java(GrpcPodApp.class, mode, LocalMesh.serviceAddress(cluster, 1) + ":80", String.valueOf(
                messages)));
    }

    /** The waypoint's access-log part for a gRPC call of {@code method} that a GRPCRoute rule forwarded, status OK. */
    static String routed(String method) {
        return "protocol=HTTP/2 method=POST path=\"/demo.Echo/" + method
                + "\" status=200 grpc_status=0 route=GRPCRoute/";
    }

    /** Waits (10 s at most) until the waypoint's access log holds a line containing {@code part}. */
    static void awaitAccessLine(String part) {
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(accessLines()).contains(part));
    }

    static String accessLines() {
        return String.join("\n", PodApps.read(waypointLog).lines().filter(l -> l.contains("wisp.access")).toList());
    }

    static long count(String text, String part) {
        return text.lines().filter(l -> l.contains(part)).count();
    }
}
