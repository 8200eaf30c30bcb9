package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.testing.Prerequisites;
import java.net.InetAddress;
import java.net.InetSocketAddress;
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
 * The waypoint end to end in a local mesh: the control plane, two node agents, {@code wisp waypoint}
 * as a child JVM in an uncaptured pod on node 1, and two versions of a server on node 2 behind the
 * service {@code server} (and {@code server-v1}, {@code server-v2}). An HTTPRoute attached to
 * {@code server} splits {@code /api} 80/20 between the versions. This test plays node 1's agent
 * tunnelling a client's connection to the waypoint (the agents do not yet do it themselves,
 * {@link WaypointClient}): an HBONE stream from the agent's own pool with the client's SVID, CONNECT to
 * the service's cluster IP, then HTTP/1.1 requests inside. The waypoint reads the route from the control plane's Envoy xDS,
 * and sends each request over a new HBONE stream to node 2's agent, which sees the waypoint's
 * identity and delivers it to the chosen pod.
 */
class WaypointE2eTest {
    static final String CLUSTER = "wpl7";
    static final String ROUTE = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: split, namespace: default}
            spec:
              parentRefs: [{kind: Service, group: "", name: server, port: 80}]
              rules:
              - matches: [{path: {type: PathPrefix, value: /api}}]
                backendRefs: [{name: server-v1, port: 80, weight: 80}, {name: server-v2, port: 80, weight: 20}]
            """;
    static final int CALLS = 200;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static WaypointClient client;

    @BeforeAll
    static void up() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nsenter");
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(30)
                .pod(new ClusterSpec.PodSpec("waypoint", "default", "waypoint", 0,
                        Map.of("istio.io/dataplane-mode", "none")))
                .pod(new ClusterSpec.PodSpec("v1", "default", "server", 1, Map.of("app", "server", "version", "v1")))
                .pod(new ClusterSpec.PodSpec("v2", "default", "server", 1, Map.of("app", "server", "version", "v2")))
                .build();
        mesh = LocalMesh.up(MeshSpec.builder(cluster).workDir(dir)
                .service(service(cluster, "server", 1, Map.of("app", "server")))
                .service(service(cluster, "server-v1", 2, Map.of("version", "v1")))
                .service(service(cluster, "server-v2", 3, Map.of("version", "v2"))).build());
        for (String pod : List.of("v1", "v2")) {
            mesh.startInPodLogged(pod, PodApps.wisp(List.of("-Xmx64m"), List.of("demo-app", "server", "--port",
                    "8080", "--name", pod)));
        }
        Path log = WaypointClient.startWaypoint(mesh, "waypoint");
        mesh.apply("route.yaml", ROUTE);
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                "waypoint holds 3 route configurations, 3 clusters"));
        // node 1's agent, played by this JVM: the mesh CA signs the client's SVID.
        client = WaypointClient.of(mesh);
    }

    static MeshSpec.ServiceSpec service(ClusterSpec cluster, String name, int i, Map<String, String> selector) {
        return new MeshSpec.ServiceSpec(name, "default", selector, LocalMesh.serviceAddress(cluster, i), 80, 8080);
    }

    @AfterAll
    static void down() throws Exception {
        if (client != null) {
            client.close();
        }
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    void anHttpRouteSplitsRequestsBetweenTwoBackendsAndAnUnmatchedPathIs404() throws Exception {
        SpiffeId me = SpiffeId.forServiceAccount("cluster.local", "default", "client");
        InetSocketAddress vip = new InetSocketAddress(InetAddress.ofLiteral(LocalMesh.serviceAddress(mesh.cluster()
                .spec(), 1)), 80);
        WaypointClient.Tunnel tunnel = client.open(me, mesh.pod("waypoint").ip(), vip);

        int v1 = 0;
        int v2 = 0;
        for (int i = 0; i < CALLS; i++) {
            String answer = tunnel.call("GET", "/api/items/" + i, Map.of());
            if (answer.equals("200 hello from v1")) {
                v1++;
            } else if (answer.equals("200 hello from v2")) {
                v2++;
            } else {
                throw new AssertionError("unexpected answer to call " + i + ": " + answer);
            }
        }
        assertThat(v1 + v2).isEqualTo(CALLS);
        // 80/20 of 200: v2 expects 40 (standard deviation 5.7); 20..60 is beyond three and a half.
        assertThat(v2).as("v2's share of " + CALLS + " (v1 %d)", v1).isBetween(20, 60);

        assertThat(tunnel.call("GET", "/other", Map.of())).as("no rule matches /other").startsWith("404 ");
        tunnel.close();

        // The backends' agent (node 2) saw each call as a connection from the waypoint's identity.
        String v1Ip = mesh.pod("v1").ip();
        String v2Ip = mesh.pod("v2").ip();
        int seenV1 = v1;
        int seenV2 = v2;
        // Exactly as many as the client counted: the 404 reached no backend.
        await().atMost(Duration.ofSeconds(20)).until(() -> fromWaypoint(v1Ip) == seenV1
                && fromWaypoint(v2Ip) == seenV2);
    }

    /** Connections node 2's agent delivered to {@code ip}:8080 from the waypoint's identity. */
    static long fromWaypoint(String ip) {
        Pattern line = Pattern.compile("connection complete direction=inbound .*src\\.identity=\""
                + Pattern.quote("spiffe://cluster.local/ns/default/sa/waypoint") + "\" dst\\.addr="
                + Pattern.quote(ip) + ":8080 ");
        return mesh.log("node2").lines().filter(l -> line.matcher(l).find()).count();
    }
}
