package dev.wisp.cli.demo;

import static java.util.Objects.requireNonNull;

import dev.wisp.local.LocalCluster;
import dev.wisp.local.LocalMesh;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The demo's L7 step, told in sub-steps ({@link #run} lists them; a new one is one more method
 * there): {@link #deploy} starts {@code server-v2} and saves a waypoint {@code Gateway} with the
 * namespace's {@code istio.io/use-waypoint} label and an HTTPRoute sending 20 % of {@code server}'s
 * calls to v2 (the local mesh starts the waypoint in a pod of its own); {@link #split} makes
 * {@value #CALLS} calls from the client pod to the Service by name and prints how many each version
 * answered.
 */
final class DemoWaypoint {
    static final String WAYPOINT_FILE = "waypoint.yaml";
    static final String WAYPOINT = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata:
              name: waypoint
              namespace: default
            spec:
              gatewayClassName: istio-waypoint
              listeners:
              - {name: mesh, port: 15008, protocol: HBONE}
            ---
            apiVersion: v1
            kind: Namespace
            metadata:
              name: default
              labels:
                istio.io/use-waypoint: waypoint
            """;
    static final String ROUTE_FILE = "route-v2.yaml";
    static final String ROUTE = """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata:
              name: server-split
              namespace: default
            spec:
              parentRefs:
              - {group: "", kind: Service, name: server, port: 80}
              rules:
              - backendRefs:
                - {name: server-v1, port: 80, weight: 80}
                - {name: server-v2, port: 80, weight: 20}
            """;
    static final int CALLS = 100;
    static final String WAYPOINT_ID = "spiffe://cluster.local/ns/default/sa/waypoint";

    private final LocalMesh mesh;
    private final PrintWriter out;
    private final List<String> wisp;
    private final Waiter waiter;

    /** How the story waits: until {@code done}, or it fails naming {@code what}. */
    interface Waiter {
        void await(String what, java.util.function.BooleanSupplier done);
    }

    DemoWaypoint(LocalMesh mesh, PrintWriter out, List<String> wisp, Waiter waiter) {
        this.mesh = requireNonNull(mesh, "mesh");
        this.out = requireNonNull(out, "out");
        this.wisp = requireNonNull(wisp, "wisp");
        this.waiter = requireNonNull(waiter, "waiter");
    }

    /** The sub-steps, in order. */
    void run() throws IOException {
        deploy();
        split();
    }

    /** Starts v2, saves the Gateway and the route, waits for the waypoint and for the agents to use it. */
    void deploy() throws IOException {
        mesh.startInPodLogged(DemoStory.SERVER_V2, command("demo-app", "server", "--name", DemoStory.SERVER_V2,
                "--port", "8080"));
        out.println("A v2 of the server starts on node2. HTTP routing needs a proxy that speaks HTTP:");
        out.println("a waypoint. Writing " + mesh.configDir().resolve(WAYPOINT_FILE) + ":");
        WAYPOINT.lines().forEach(l -> out.println("  | " + l));
        out.println("and " + mesh.configDir().resolve(ROUTE_FILE) + ":");
        ROUTE.lines().forEach(l -> out.println("  | " + l));
        out.flush();
        mesh.apply(ROUTE_FILE, ROUTE);
        mesh.apply(WAYPOINT_FILE, WAYPOINT);
        waiter.await("the mesh to start the waypoint", () -> mesh.waypointLog("default", "waypoint").map(
                DemoWaypoint::read).filter(l -> l.contains("waypoint waypoint ready on")).isPresent());
        LocalCluster.Pod pod = mesh.waypointPod("default", "waypoint").orElseThrow();
        Path log = mesh.waypointLog("default", "waypoint").orElseThrow();
        waiter.await("the waypoint to hold the route", () -> read(log).contains("route configurations"));
        waiter.await("node1's agent to send server's traffic to the waypoint", () -> {
            try {
                return mesh.agentAdmin(mesh.pod(DemoStory.CLIENT).node().name(), "/config_dump").contains(
                        WAYPOINT_ID);
            } catch (IOException e) {
                return false;
            }
        });
        out.println("  the mesh started 'wisp waypoint' in pod " + pod.name() + " (" + pod.ip() + ", " + pod.node()
                .name() + ")");
        out.println("    as " + WAYPOINT_ID);
        out.println("  node1's agent now tunnels calls to server to it; node2's agent takes them");
        out.println("  only from the waypoint (anything else: 401 \"bypassed waypoint\").");
        out.flush();
    }

    /** {@value #CALLS} calls from the client pod to the Service by name; the answers counted per version. */
    void split() throws IOException {
        String url = "http://" + DemoStory.SERVICE_NAME + "/";
        CallCounter batch = new CallCounter("default/client").follow(mesh.startInPod(DemoStory.CLIENT, command(
                "demo-app", "client", "--url", url, "--count", String.valueOf(CALLS), "--interval", "PT0S",
                "--timeout", "PT10S")).getInputStream());
        out.println(CALLS + " calls from client to " + url + ":");
        out.flush();
        waiter.await(CALLS + " calls from client", () -> batch.ok() + batch.failed() >= CALLS);
        Map<String, Long> answers = batch.answers();
        answers.forEach((answer, n) -> out.printf("  %4d  %s%n", n, answer));
        long v2 = answers.getOrDefault("200 hello from " + DemoStory.SERVER_V2, 0L);
        out.printf("  v2's share: %d %% (the route asks for 20 %%)%n", Math.round(100.0 * v2 / CALLS));
        out.flush();
    }

    private List<String> command(String... args) {
        List<String> c = new ArrayList<>(wisp);
        c.addAll(List.of(args));
        return c;
    }

    private static String read(Path file) {
        try {
            return java.nio.file.Files.exists(file) ? java.nio.file.Files.readString(file) : "";
        } catch (IOException e) {
            return "";
        }
    }
}
