package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.Leftovers;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.ConfigYaml;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The waypoint end to end in a local mesh, on the path a captured pod's call really takes: the
 * control plane, two node agents, {@code wisp waypoint} which the mesh starts in an uncaptured pod of
 * its own on node 1 when the waypoint {@code Gateway} is saved in its config directory, a captured
 * client pod on node 1 and two versions of a server on node 2 behind the service
 * {@code server} (and {@code server-v1}, {@code server-v2}). The Gateway and the namespace's {@code istio.io/use-waypoint} label make the control plane point the agents at the
 * waypoint; an HTTPRoute attached to {@code server} splits {@code /api} 80/20 and sends
 * {@code x-version: v2} to v2. The client ({@code wisp demo-app client}, mesh-unaware) calls the
 * service's cluster IP; node 1's agent tunnels each connection to the waypoint (CONNECT target =
 * VIP:port), the waypoint routes it and opens a new HBONE stream to node 2's agent, which admits the
 * waypoint's identity and refuses the client's own when it dials a server pod directly.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WaypointE2eTest {
    /** Cluster name and address base; {@code -Dwisp.wp.cluster}/{@code -Dwisp.wp.base} run it beside another copy. */
    static final String CLUSTER = System.getProperty("wisp.wp.cluster", "wpl7");
    static final int BASE = Integer.getInteger("wisp.wp.base", 30);
    static final String WAYPOINT_ID = "spiffe://cluster.local/ns/default/sa/waypoint";
    static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    static final String WAYPOINT = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: {name: waypoint, namespace: default}
            spec:
              gatewayClassName: wisp-waypoint
              listeners: [{name: mesh, port: 15008, protocol: HBONE}]
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: default
              labels: {istio.io/use-waypoint: waypoint}
            """;
    static final String ROUTE = ConfigYaml.httpRouteHead("split", "default", "server", 80) + """
            rules:
            - matches: [{path: {type: PathPrefix, value: /api}}]
              backendRefs: [{name: server-v1, port: 80, weight: 80}, {name: server-v2, port: 80, weight: 20}]
            - matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-version, value: v2}]}]
              backendRefs: [{name: server-v2, port: 80}]
            """.indent(2);
    static final int CALLS = 1000;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static String vip;
    static LocalCluster.Pod waypointPod;

    @BeforeAll
    static void up() throws Exception {
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(BASE).pod("client", "default", "client", 0)
                .pod(new ClusterSpec.PodSpec("v1", "default", "server", 1, Map.of("app", "server", "version", "v1")))
                .pod(new ClusterSpec.PodSpec("v2", "default", "server", 1, Map.of("app", "server", "version", "v2")))
                .build();
        mesh = PodApps.up(MeshSpec.builder(cluster).workDir(dir)
                .service(service(cluster, "server", 1, Map.of("app", "server")))
                .service(service(cluster, "server-v1", 2, Map.of("version", "v1")))
                .service(service(cluster, "server-v2", 3, Map.of("version", "v2")))
                // The agents' DNS proxy answers the Service's name (nothing serves other names here).
                .agentArg("--dns-upstream").agentArg("10." + BASE + ".0.2:53"));
        vip = LocalMesh.serviceAddress(cluster, 1);
        for (String pod : List.of("v1", "v2")) {
            mesh.startInPodLogged(pod, PodApps.wisp(List.of("-Xmx64m"), List.of("demo-app", "server", "--port",
                    "8080", "--name", pod)));
        }
        mesh.apply("route.yaml", ROUTE);
        // The mesh starts the waypoint in a pod of its own once the Gateway is in the config directory.
        mesh.apply("waypoint.yaml", WAYPOINT);
        await().atMost(Duration.ofSeconds(60)).until(() -> mesh.waypointLog("default", "waypoint").isPresent());
        Path log = mesh.waypointLog("default", "waypoint").orElseThrow();
        // The waypoint's log is the failure message: the temporary directory goes with the test.
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                "waypoint waypoint ready on", "waypoint holds 3 route configurations, 3 clusters"));
        waypointPod = mesh.waypointPod("default", "waypoint").orElseThrow();
        assertThat(waypointPod.node().name()).isEqualTo("node1");
        assertThat(mesh.spiffeId(waypointPod.name())).as("the Gateway's name is its service account").isEqualTo(
                WAYPOINT_ID);
        // Node 1's agent knows the service is behind the waypoint once its config names it.
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(mesh.agentAdmin("node1",
                "/config_dump")).contains(WAYPOINT_ID));
    }

    static MeshSpec.ServiceSpec service(ClusterSpec cluster, String name, int i, Map<String, String> selector) {
        return new MeshSpec.ServiceSpec(name, "default", selector, LocalMesh.serviceAddress(cluster, i), 80, 8080);
    }

    @AfterAll
    static void down() throws Exception {
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    @Order(1)
    void aCapturedPodsCallsGoThroughTheWaypointWhichSplitsMatchesAnd404s() throws Exception {
        List<String> lines = calls("http://" + vip + "/api/items", CALLS);
        Map<String, Integer> split = answers(lines);
        int v1 = split.getOrDefault("200 hello from v1", 0);
        int v2 = split.getOrDefault("200 hello from v2", 0);
        assertThat(v1 + v2).as("answers to %d calls: %s%s", CALLS, split, problems(lines)).isEqualTo(CALLS);
        // 80/20 of 1,000 within ±5 %: v2 expects 200 (standard deviation 12.6).
        assertThat(v2).as("v2's share of %d calls (v1 %d)", CALLS, v1).isBetween(150, 250);

        // The servers' agent (node 2) delivered the calls to the pods the client was told of, as
        // connections from the waypoint's identity, which keeps them (UpstreamPool): each pod got at least
        // one, and all of them together are a few, not one per call.
        String v1Ip = mesh.pod("v1").ip();
        String v2Ip = mesh.pod("v2").ip();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(List.of(fromWaypoint(v1Ip),
                fromWaypoint(v2Ip))).allMatch(n -> n >= 1));
        assertThat(fromWaypoint(v1Ip) + fromWaypoint(v2Ip)).as("node 2's connections from the waypoint for %d calls",
                CALLS).isLessThanOrEqualTo(CALLS / 10);

        // By the Service's name this time: the agent's DNS proxy answers it with the VIP.
        List<String> byName = calls("http://server.default.svc.cluster.local/api/items", 20, "x-version: v2");
        assertThat(answers(byName)).as("x-version: v2 reaches v2 only%s", problems(byName)).isEqualTo(Map.of(
                "200 hello from v2", 20));
        Map<String, Integer> unmatched = answers(calls("http://" + vip + "/other", 5));
        assertThat(unmatched.keySet()).as("no rule matches /other: the waypoint answers").singleElement()
                .asString().startsWith("404");
        assertThat(unmatched.values()).containsExactly(5);
        assertThat(fromWaypoint(v1Ip) + fromWaypoint(v2Ip)).as("node 2's connections from the waypoint for %d calls",
                CALLS + 20).isLessThanOrEqualTo(CALLS / 10);

        // The waypoint ends each upstream stream (END_STREAM), never resets it: node 2's HTTP/2 server
        // takes 200 resets in 30 s for a rapid-reset attack and closes the connection, failing the
        // requests on it. One connection carries the waypoint's streams (the pool might open another).
        assertThat(waypointConnections()).as("the waypoint's HBONE connections to node 2").isLessThan(3);

        // Node 1's agent carried the client's calls to the waypoint: CONNECT target the VIP, the
        // tunnel to the waypoint pod's 15008, the waypoint's identity expected.
        List<String> parts = List.of("direction=outbound src.addr=" + mesh.pod("client").ip() + ":", " dst.addr="
                + vip + ":80 dst.hbone_addr=" + waypointPod.ip()
                + ":15008 dst.service=server.default.svc.cluster.local ",
                " dst.identity=\"" + WAYPOINT_ID + "\"");
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            List<String> outbound = mesh.log("node1").lines().filter(l -> l.contains("connection opened direction"
                    + "=outbound")).toList();
            assertThat(outbound.stream().filter(l -> parts.stream().allMatch(l::contains)).count()).as(
                    "node 1's outbound lines to the waypoint (last: %s)", outbound.isEmpty()
                            ? "none"
                            : outbound
                                    .getLast())
                    .isGreaterThanOrEqualTo(CALLS + 25);
        });
    }

    @Test
    @Order(2)
    void aCallThatBypassesTheWaypointIsRefusedByTheServersAgent() throws Exception {
        String v1Ip = mesh.pod("v1").ip();
        Map<String, Integer> direct = answers(calls("http://" + v1Ip + ":8080/api/items", 3));
        assertThat(direct).as("dialling the server pod, not the service").isEqualTo(Map.of("failed", 3));
        Pattern refused = PodApps.denied(mesh.pod("client").ip(), CLIENT_ID, v1Ip, 8080,
                "bypassed waypoint: workload default/v1 takes traffic only from its waypoint [" + WAYPOINT_ID
                        + "], not from " + CLIENT_ID);
        Pattern fromClient = Pattern.compile("connection complete direction=inbound .*src\\.identity=\""
                + Pattern.quote(CLIENT_ID) + "\" dst\\.addr=" + Pattern.quote(v1Ip) + ":8080 ");
        // Each call refused (Java's HTTP client tries a refused call once more), none let through.
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            List<String> seen = mesh.log("node2").lines().filter(l -> fromClient.matcher(l).find()).toList();
            assertThat(seen).hasSizeGreaterThanOrEqualTo(3).allMatch(l -> refused.matcher(l).find());
        });
    }

    @Test
    @Order(3)
    void removingTheGatewayStopsTheWaypointAndCallsGoDirect() throws Exception {
        String netns = waypointPod.netns();
        assertThat(mesh.delete("waypoint.yaml")).isTrue();
        await().atMost(Duration.ofSeconds(60)).until(() -> mesh.waypointPod("default", "waypoint").isEmpty());
        assertThat(mesh.cluster().pods()).extracting(LocalCluster.Pod::name).doesNotContain(waypointPod.name());
        assertThat(Leftovers.scan(CLUSTER).toString()).as("the waypoint pod's namespace is gone").doesNotContain(
                netns);
        // Without a waypoint, the control plane points the agents at the endpoints again: no L7 route,
        // so the unmatched path reaches a server.
        // Each try starts a client JVM in the pod: slow on a loaded machine, so the deadline is generous.
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> {
            List<String> lines = calls("http://" + vip + "/other", 1);
            assertThat(answers(lines).keySet()).as(String.join("\n", lines)).singleElement().asString().matches(
                    "200 hello from v[12]");
        });
    }

    /** Runs {@code wisp demo-app client} in the client pod for {@code count} calls; its output lines. */
    static List<String> calls(String url, int count, String... headers) throws Exception {
        List<String> args = new ArrayList<>(List.of("demo-app", "client", "--url", url, "--count", String.valueOf(
                count), "--interval", "PT0S", "--timeout", "PT10S"));
        for (String h : headers) {
            args.addAll(List.of("--header", h));
        }
        Path log = mesh.startInPodLogged("client", PodApps.wisp(List.of("-Xmx64m"), args));
        String last = " call " + count + " ";
        await().atMost(Duration.ofSeconds(60 + count / 5)).pollInterval(Duration.ofMillis(500)).untilAsserted(
                () -> assertThat(PodApps.read(log)).contains(last));
        return PodApps.read(log).lines().toList();
    }

    /** The client's answers ({@code 200 hello from v1}, {@code 404 …}, {@code failed …}), counted. */
    static Map<String, Integer> answers(List<String> lines) {
        Pattern call = Pattern.compile("^\\S+ call \\d+ (?:ok (.*)|(failed).*)$");
        Map<String, Integer> out = new TreeMap<>();
        for (String l : lines) {
            Matcher m = call.matcher(l);
            if (m.matches()) {
                out.merge(m.group(1) != null ? m.group(1) : m.group(2), 1, Integer::sum);
            }
        }
        return out;
    }

    /**
     * What a failed call left: the client's failed lines, node 1's refused or failed outbound
     * connections, the waypoint's warnings; the assertion's message.
     */
    static String problems(List<String> clientLines) {
        StringBuilder out = new StringBuilder();
        clientLines.stream().filter(l -> l.contains(" failed ")).forEach(l -> out.append("\nclient: ").append(l));
        mesh.log("node1").lines().filter(l -> l.contains("direction=outbound") && l.contains("error=")).forEach(
                l -> out.append("\nnode1: ").append(l));
        mesh.waypointLog("default", "waypoint").map(PodApps::read).orElse("").lines().filter(l -> l.contains(" WARN ")
                || l.contains(" ERROR ") || (l.contains("wisp.access") && !l.contains(" status=200 "))).forEach(
                        l -> out.append("\nwaypoint: ").append(l));
        return out.toString();
    }

    /** The distinct HBONE connections (source ports) the waypoint's streams came over to node 2. */
    static long waypointConnections() {
        Pattern line = Pattern.compile("connection opened direction=inbound src\\.addr=" + Pattern.quote(
                waypointPod.ip()) + ":(\\d+) ");
        return mesh.log("node2").lines().map(line::matcher).filter(Matcher::find).map(m -> m.group(1)).distinct()
                .count();
    }

    /** Node 2's inbound connections from the waypoint's identity to {@code ip}:8080 (opened, so kept ones count). */
    static long fromWaypoint(String ip) {
        Pattern line = Pattern.compile("connection opened direction=inbound .*src\\.identity=\""
                + Pattern.quote(WAYPOINT_ID) + "\" dst\\.addr=" + Pattern.quote(ip) + ":8080 ");
        return mesh.log("node2").lines().filter(l -> line.matcher(l).find()).count();
    }
}
