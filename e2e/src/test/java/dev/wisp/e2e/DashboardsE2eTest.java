package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.cli.demo.DemoCommand;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.local.Prometheus;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.testing.Prerequisites;
import io.netty.handler.codec.http.FullHttpResponse;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Grafana dashboards of {@code charts/wisp/dashboards} against Debian's Prometheus scraping a
 * local mesh: every panel query, with the template variables and Grafana's built-ins substituted as
 * Grafana would, is valid PromQL and returns at least one series after the test's traffic; the
 * counter panels show exactly what the test sent for the known workloads {@code default/server}
 * (connections) and {@code default/web} (HTTP requests through a waypoint, {@code wisp waypoint} in
 * an uncaptured pod that Prometheus scrapes too, which the test's {@link WaypointClient} calls as
 * {@code default/client}); the waypoint's duration quantiles lie within what the client measured;
 * and each variable's {@code label_values} query finds values.
 */
class DashboardsE2eTest {
    static final String CLUSTER = "dashd";
    static final Path DASHBOARDS = Path.of("..", "charts", "wisp", "dashboards");
    static final ObjectMapper JSON = new ObjectMapper();
    static final int CALLS = 5;
    static final int REQUEST_BYTES = 1000;
    /** Requests through the waypoint to {@code web} (answered 200 by its pod) and to {@code gone} (503). */
    static final int WEB_CALLS = 20;
    static final int GONE_CALLS = 3;
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount("cluster.local", "default", "client");
    static final Pattern LABEL_VALUES = Pattern.compile("label_values\\((?:(.*),\\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\\)");
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static Prometheus prometheus;
    static long startedAt;
    static int denied;
    static int curlAllowed;
    static WaypointClient agent;
    /** Requests answered 200 through the waypoint so far, and the longest any took (client-side, ms). */
    static int webCalls;
    static double slowestMs;

    @BeforeAll
    static void up() throws Exception {
        Prerequisites.requireCommands("prometheus");
        startedAt = System.nanoTime();
        ClusterSpec cluster = PodApps.demoCluster(CLUSTER, 72, new ClusterSpec.PodSpec("waypoint", "default",
                "waypoint", 0, WaypointClient.POD_LABELS),
                new ClusterSpec.PodSpec("web", "default", "web", 1, Map.of(
                        "app", "web")));
        mesh = PodApps.upWithServer(MeshSpec.builder(cluster).workDir(dir)
                .service(WaypointE2eTest.service(cluster, "web", 1, Map.of("app", "web")))
                .service(WaypointE2eTest.service(cluster, "gone", 2, Map.of("app", "none"))), 9000);
        mesh.startInPodLogged("web", PodApps.wisp(List.of("-Xmx64m"), List.of("demo-app", "server", "--port",
                "8080", "--name", "web")));
        Path waypointLog = WaypointClient.startWaypoint(mesh, "waypoint");
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(PodApps.read(waypointLog)).contains(
                "waypoint holds 2 route configurations, 2 clusters"));
        prometheus = mesh.startPrometheus(9090, List.of(new Prometheus.Job("wisp-waypoint", List.of(
                new Prometheus.Target(mesh.pod("waypoint").ip() + ":15020", Map.of())))));
        await().atMost(Duration.ofSeconds(60)).until(() -> prometheus.value("sum(up)").orElse(0) == 4);
        String server = mesh.pod("server").ip();
        PodApps.Shell client = new PodApps.Shell(mesh, "client");
        for (int i = 0; i < CALLS; i++) {
            assertThat(client.call(server, 9000, REQUEST_BYTES)).isEqualTo("ok server " + REQUEST_BYTES);
        }
        mesh.apply("deny-other.yaml", DemoCommand.DENY_POLICY);
        PodApps.Shell curl = new PodApps.Shell(mesh, "curl");
        // Until the policy reaches node 2 curl's calls may pass: they count as connections to server too.
        await().atMost(Duration.ofSeconds(30)).until(() -> {
            if (curl.call(server, 9000, 10).startsWith("failed")) {
                return true;
            }
            curlAllowed++;
            return false;
        });
        denied = 1;
        // WireGuard peers are installed just in time: one ping from node 1's pod to node 2's (ICMP is not
        // carried over HBONE) gives each node's device its peer, and the per-peer series exist.
        new ProcessBuilder("ip", "netns", "exec", mesh.pod("client").netns(), "ping", "-c", "3", "-W", "2", server)
                .redirectErrorStream(true).start().waitFor(20, java.util.concurrent.TimeUnit.SECONDS);
        await().atMost(Duration.ofSeconds(30)).until(() -> prometheus.value("sum(wisp_wireguard_peers)").orElse(0) == 2
                && prometheus.value("count(wisp_wireguard_peer_last_handshake_age_seconds >= 0)").orElse(0) >= 1);
        // HTTP through the waypoint: to web's pod (200), and to gone, which no pod backs (503).
        agent = WaypointClient.of(mesh);
        callWeb(WEB_CALLS);
        try (WaypointClient.Tunnel gone = tunnel(2, "gone")) {
            for (int i = 0; i < GONE_CALLS; i++) {
                FullHttpResponse r = gone.get("/items/" + i);
                assertThat(r.status().code()).as(r.content().toString(StandardCharsets.UTF_8)).isEqualTo(503);
                r.release();
            }
        }
        await().atMost(Duration.ofSeconds(30))
                .until(() -> prometheus.value("sum(istio_requests_total)").orElse(0) == WEB_CALLS + GONE_CALLS);
        // Every connection is scraped: the server's agent counted them all.
        await().atMost(Duration.ofSeconds(30)).until(() -> prometheus.value(
                "sum(istio_tcp_connections_closed_total{reporter=\"destination\",destination_workload=\"server\"})")
                .orElse(0) == CALLS + curlAllowed + denied);
    }

    static WaypointClient.Tunnel tunnel(int service, String name) throws Exception {
        return agent.open(CLIENT, mesh.pod("waypoint").ip(), new InetSocketAddress(InetAddress.ofLiteral(LocalMesh
                .serviceAddress(mesh.cluster().spec(), service)), 80), name + ".default.svc.cluster.local");
    }

    /** {@code n} requests through the waypoint to web, each answered 200 by web's pod; counted. */
    static void callWeb(int n) throws Exception {
        try (WaypointClient.Tunnel web = tunnel(1, "web")) {
            for (int i = 0; i < n; i++) {
                long start = System.nanoTime();
                FullHttpResponse r = web.get("/items/" + i);
                slowestMs = Math.max(slowestMs, (System.nanoTime() - start) / 1e6);
                String body = r.content().toString(StandardCharsets.UTF_8);
                r.release();
                assertThat(r.status().code()).as(body).isEqualTo(200);
                assertThat(body).isEqualTo("hello from web\n");
                webCalls++;
            }
        }
    }

    @AfterAll
    static void down() throws Exception {
        if (agent != null) {
            agent.close();
        }
        PodApps.down(mesh, CLUSTER);
    }

    static List<Path> dashboards() throws IOException {
        try (Stream<Path> s = Files.list(DASHBOARDS)) {
            return s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
    }

    /** A panel query with everything Grafana substitutes substituted. */
    static String substitute(String expr, Map<String, String> variables) {
        long rangeSeconds = Math.max(60, Duration.ofNanos(System.nanoTime() - startedAt).toSeconds() + 60);
        String out = expr.replace("$__rate_interval", "4s") // max(4 × 1 s scrape, interval + scrape)
                .replace("$__range_s", String.valueOf(rangeSeconds))
                .replace("$__range_ms", String.valueOf(rangeSeconds * 1000))
                .replace("$__range", rangeSeconds + "s")
                .replace("$__interval_ms", "1000")
                .replace("$__interval", "1s");
        for (var v : variables.entrySet()) {
            out = out.replace("${" + v.getKey() + "}", v.getValue()).replace("$" + v.getKey(), v.getValue());
        }
        assertThat(out).as("every variable of '%s' substituted", expr).doesNotContain("$");
        return out;
    }

    /** "All" for each query variable (its allValue, a regex), or the value the test chose. */
    static Map<String, String> variables(JsonNode dashboard, Map<String, String> chosen) {
        Map<String, String> out = new LinkedHashMap<>();
        for (JsonNode v : dashboard.path("templating").path("list")) {
            String name = v.path("name").asText();
            if (v.path("type").asText().equals("query")) {
                out.put(name, chosen.getOrDefault(name, v.path("allValue").asText(".*")));
            }
        }
        return out;
    }

    static List<JsonNode> targets(JsonNode dashboard) {
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode p : dashboard.path("panels")) {
            p.path("targets").forEach(out::add);
        }
        return out;
    }

    @Test
    void everyPanelQueryIsValidPromqlAndReturnsSeries() throws Exception {
        List<String> checked = new ArrayList<>();
        for (Path file : dashboards()) {
            JsonNode d = JSON.readTree(file.toFile());
            for (Map<String, String> chosen : List.of(Map.<String, String>of(), Map.of("namespace", "default",
                    "workload", "server"))) {
                Map<String, String> vars = variables(d, chosen);
                for (JsonNode p : d.path("panels")) {
                    for (JsonNode t : p.path("targets")) {
                        String q = substitute(t.path("expr").asText(), vars);
                        // Prometheus answers 400 for invalid PromQL: query() throws with its error.
                        if (chosen.isEmpty()) {
                            await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(prometheus.query(q))
                                    .as("%s / %s: %s", file.getFileName(), p.path("title").asText(), q).isNotEmpty());
                        } else {
                            // default/server as the workload: valid (an outbound panel of a server may be empty).
                            prometheus.query(q);
                        }
                        checked.add(q);
                    }
                }
            }
        }
        assertThat(checked).hasSizeGreaterThan(80);
        System.out.println(checked.size() + " dashboard queries valid with series, e.g. " + checked.getFirst());
    }

    @Test
    void everyVariableQueryFindsValues() throws Exception {
        for (Path file : dashboards()) {
            JsonNode d = JSON.readTree(file.toFile());
            Map<String, String> vars = variables(d, Map.of());
            for (JsonNode v : d.path("templating").path("list")) {
                if (!v.path("type").asText().equals("query")) {
                    continue;
                }
                Matcher m = LABEL_VALUES.matcher(v.path("query").path("query").asText());
                assertThat(m.matches()).as(v.toString()).isTrue();
                if (v.path("name").asText().equals("cluster")) {
                    // A local mesh has no cluster label: the variable's "All" (.*) matches its absence.
                    continue;
                }
                String q = "count by (" + m.group(2) + ") (" + substitute(m.group(1), vars) + ")";
                assertThat(prometheus.query(q)).as("%s variable %s: %s", file.getFileName(), v.path("name")
                        .asText(), q).isNotEmpty();
            }
        }
    }

    @Test
    void counterPanelsShowExactlyWhatWasSentToTheKnownWorkload() throws Exception {
        JsonNode overview = JSON.readTree(DASHBOARDS.resolve("mesh-overview.json").toFile());
        Map<String, String> server = variables(overview, Map.of("namespace", "default", "workload", "server"));
        assertThat(panelValue(overview, "Connections opened at servers (since the agents started)", server))
                .isEqualTo(CALLS + curlAllowed + denied);
        assertThat(panelValue(overview, "Connections denied (since the agents started)", server)).isEqualTo(denied);
        assertThat(panelValue(overview, "Bytes received by servers (since the agents started)", server))
                .isEqualTo(CALLS * REQUEST_BYTES + curlAllowed * 10);
        JsonNode workload = JSON.readTree(DASHBOARDS.resolve("workload.json").toFile());
        assertThat(panelValue(workload, "Inbound connections (since the agents started)", variables(workload, Map.of(
                "namespace", "default", "workload", "server")))).isEqualTo(CALLS + curlAllowed + denied);
        assertThat(panelValue(workload, "Outbound connections (since the agents started)", variables(workload, Map
                .of("namespace", "default", "workload", "client")))).isEqualTo(CALLS);
        // WireGuard between the mesh's two nodes: both keys registered, each device with the other as peer.
        JsonNode wireguard = JSON.readTree(DASHBOARDS.resolve("wireguard.json").toFile());
        Map<String, String> all = variables(wireguard, Map.of());
        assertThat(panelValue(wireguard, "Nodes registered (control plane)", all)).isEqualTo(2);
        assertThat(panelValue(wireguard, "Peers (all agents)", all)).isEqualTo(2);
        assertThat(panelValue(wireguard, "Registrations refused (since the control plane started)", all)).isZero();
        assertThat(panelValue(workload, "Inbound connections denied (since the agents started)", variables(workload,
                Map.of("namespace", "default", "workload", "server")))).isEqualTo(denied);
    }

    /**
     * The waypoint's request panels: the counters show exactly the requests sent through it, by the
     * workload the waypoint forwarded to (web) or all (web's 200s and gone's 503s), and the rate panel
     * has web's 200 series with a rate above zero while requests flow.
     */
    @Test
    void waypointRequestPanelsShowExactlyTheRequestsSentThroughIt() throws Exception {
        JsonNode overview = JSON.readTree(DASHBOARDS.resolve("mesh-overview.json").toFile());
        JsonNode workload = JSON.readTree(DASHBOARDS.resolve("workload.json").toFile());
        Map<String, String> web = Map.of("namespace", "default", "workload", "web");
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(panelValue(overview, "Requests answered by waypoints (since they started)", variables(
                    overview, web))).isEqualTo(webCalls);
            assertThat(panelValue(overview, "Requests answered by waypoints (since they started)", variables(
                    overview, Map.of()))).isEqualTo(webCalls + GONE_CALLS);
            assertThat(panelValue(overview, "Request success rate (waypoints, since they started)", variables(
                    overview, Map.of()))).isCloseTo((double) webCalls / (webCalls + GONE_CALLS), within(1e-9));
            assertThat(panelValue(overview, "Request success rate (waypoints, since they started)", variables(
                    overview, web))).isEqualTo(1.0);
            assertThat(panelValue(workload, "Inbound requests through waypoints (since they started)", variables(
                    workload, web))).isEqualTo(webCalls);
            // The waypoint keeps its upstream streams (UpstreamPool): web's agent counted at least one
            // connection from it, and fewer than the requests it forwarded.
            assertThat(panelValue(workload, "Inbound connections (since the agents started)", variables(workload,
                    web))).isPositive().isLessThan(webCalls);
        });
        // A rate needs two scrapes inside $__rate_interval (4 s): requests flow while it is read.
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
            callWeb(5);
            assertThat(query(overview, "Requests per second, by workload (waypoint)", variables(overview, Map.of())))
                    .filteredOn(x -> x.value() > 0).extracting(Prometheus.Sample::labels).contains(Map.of(
                            "destination_workload_namespace", "default", "destination_workload", "web",
                            "response_code", "200"));
        });
    }

    /**
     * The inbound p50 / p99 panel of web while requests flow through the waypoint: both exist, p50 is at
     * most p99, and p99 is at most the Istio bucket bound above the slowest request the client saw
     * (the waypoint's duration is within the client's round trip).
     */
    @Test
    void waypointDurationPanelShowsQuantilesWithinWhatTheClientMeasured() throws Exception {
        JsonNode workload = JSON.readTree(DASHBOARDS.resolve("workload.json").toFile());
        Map<String, String> web = variables(workload, Map.of("namespace", "default", "workload", "web"));
        String title = "Inbound request duration p50 / p99 (waypoint)";
        List<Double> seen = new ArrayList<>();
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
            callWeb(5);
            List<Prometheus.Sample> p50 = query(workload, title, 0, web);
            List<Prometheus.Sample> p99 = query(workload, title, 1, web);
            assertThat(p50).hasSize(1);
            assertThat(p99).hasSize(1);
            double bound = java.util.stream.DoubleStream.of(0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
                    10000, 30000, 60000).filter(b -> b >= slowestMs).findFirst().orElse(Double.MAX_VALUE);
            assertThat(p50.getFirst().value()).as("p50").isPositive().isLessThanOrEqualTo(p99.getFirst().value());
            assertThat(p99.getFirst().value()).as("p99, slowest request %.1f ms", slowestMs).isLessThanOrEqualTo(
                    bound);
            seen.clear();
            seen.addAll(List.of(p50.getFirst().value(), p99.getFirst().value()));
        });
        System.out.printf("waypoint p50 / p99 of web: %s ms (slowest round trip %.1f ms, %d requests)%n",
                seen, slowestMs, webCalls);
    }

    /**
     * The node agent's control plane and certificate panels read the agents' own state: both agents
     * connected, none rejected an update, and every certificate held has between an hour and its 24 h
     * lifetime left (a real value from the SVIDs, not a constant).
     */
    @Test
    void nodeAgentPanelsShowTheStreamAndTheCertificatesOfBothAgents() throws Exception {
        JsonNode agent = JSON.readTree(DASHBOARDS.resolve("node-agent.json").toFile());
        Map<String, String> all = variables(agent, Map.of());
        assertThat(panelValue(agent, "Agents connected to the control plane", all)).isEqualTo(2);
        assertThat(panelValue(agent, "Agents not connected to the control plane", all)).isZero();
        assertThat(panelValue(agent, "Configuration updates rejected (since the agents started)", all)).isZero();
        assertThat(panelValue(agent, "Shortest certificate lifetime left", all)).isBetween(3600.0, 86_400.0);
        // One row per identity an agent holds: each local workload's service account, on its node's agent.
        for (String sa : List.of("default/sa/client", "other/sa/curl", "default/sa/server")) {
            assertThat(prometheus.query("istio_agent_cert_expiry_seconds{identity=~\".*/ns/" + sa + "\"}"))
                    .as(sa).hasSize(1);
        }
        assertThat(prometheus.query("count by (instance) (istio_agent_cert_expiry_seconds)")).hasSize(2);
    }

    static double panelValue(JsonNode dashboard, String title, Map<String, String> vars) throws IOException {
        var r = query(dashboard, title, vars);
        assertThat(r).as(title).hasSize(1);
        return r.getFirst().value();
    }

    /** What the first query of the panel {@code title} answers now. */
    static List<Prometheus.Sample> query(JsonNode dashboard, String title, Map<String, String> vars)
            throws IOException {
        return query(dashboard, title, 0, vars);
    }

    /** What the panel's query number {@code target} answers now. */
    static List<Prometheus.Sample> query(JsonNode dashboard, String title, int target, Map<String, String> vars)
            throws IOException {
        for (JsonNode p : dashboard.path("panels")) {
            if (p.path("title").asText().equals(title)) {
                return prometheus.query(substitute(p.path("targets").get(target).path("expr").asText(), vars));
            }
        }
        throw new AssertionError("no panel '" + title + "' in " + dashboard.path("title").asText());
    }

    /**
     * What Grafana needs beyond its schema (which {@code DashboardSchemaTest} checks): unique uids,
     * titles, panels with unique ids inside the 24-column grid, each target with a unique refId and
     * the dashboard's datasource variable.
     */
    @Test
    void dashboardsHaveTheShapeGrafanaImports() throws Exception {
        Set<String> uids = new HashSet<>();
        for (Path file : dashboards()) {
            JsonNode d = JSON.readTree(file.toFile());
            assertThat(uids.add(d.path("uid").asText())).as("unique uid in " + file).isTrue();
            assertThat(d.path("uid").asText().length()).isBetween(1, 40);
            assertThat(d.path("title").asText()).startsWith("Wisp / ");
            assertThat(d.path("schemaVersion").asInt()).isGreaterThanOrEqualTo(36);
            Set<Integer> ids = new HashSet<>();
            for (JsonNode p : d.path("panels")) {
                assertThat(ids.add(p.path("id").asInt())).as(file + " panel id").isTrue();
                JsonNode g = p.path("gridPos");
                assertThat(g.path("x").asInt() + g.path("w").asInt()).as(file + " " + p.path("title"))
                        .isLessThanOrEqualTo(
                                24);
                assertThat(p.path("datasource").path("uid").asText()).isEqualTo("${datasource}");
                Set<String> refs = new HashSet<>();
                p.path("targets").forEach(t -> assertThat(refs.add(t.path("refId").asText())).isTrue());
                assertThat(refs).isNotEmpty();
            }
            assertThat(d.path("templating").path("list").get(0).path("type").asText()).isEqualTo("datasource");
            assertThat(variables(d, Map.of())).containsKey("cluster");
        }
        assertThat(dashboards()).hasSize(5);
    }
}
