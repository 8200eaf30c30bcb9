package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.cli.demo.DemoCommand;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.local.Prometheus;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
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
 * counter panels show exactly what the test sent for the known workload {@code default/server}; and
 * each variable's {@code label_values} query finds values. Panels of series that do not exist yet
 * ({@link #PENDING}: the L7 waypoint's) must be valid PromQL and return nothing, so the test fails
 * when their series appear and the panel is still listed as pending.
 */
class DashboardsE2eTest {
    static final String CLUSTER = "dashd";
    static final Path DASHBOARDS = Path.of("..", "charts", "wisp", "dashboards");
    static final ObjectMapper JSON = new ObjectMapper();
    static final int CALLS = 5;
    static final int REQUEST_BYTES = 1000;
    /** Panels whose series come with the L7 waypoint (istio_requests_total, its duration histogram). */
    static final Set<String> PENDING = Set.of("Requests per second, by workload (waypoint)",
            "Inbound request duration p50 / p99 (waypoint)", "Outbound request duration p50 / p99 (waypoint)");
    static final Pattern LABEL_VALUES = Pattern.compile("label_values\\((?:(.*),\\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\\)");
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static Prometheus prometheus;
    static long startedAt;
    static int denied;
    static int curlAllowed;

    @BeforeAll
    static void up() throws Exception {
        Prerequisites.requireCommands("prometheus");
        startedAt = System.nanoTime();
        mesh = PodApps.upWithServer(PodApps.demoMesh(CLUSTER, 72, dir), 9000);
        prometheus = mesh.startPrometheus(9090);
        await().atMost(Duration.ofSeconds(60)).until(() -> prometheus.value("sum(up)").orElse(0) == 3);
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
        // Every connection is scraped: the server's agent counted them all.
        await().atMost(Duration.ofSeconds(30)).until(() -> prometheus.value(
                "sum(istio_tcp_connections_closed_total{reporter=\"destination\",destination_workload=\"server\"})")
                .orElse(0) == CALLS + curlAllowed + denied);
    }

    @AfterAll
    static void down() throws Exception {
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
        Set<String> pending = new HashSet<>();
        for (Path file : dashboards()) {
            JsonNode d = JSON.readTree(file.toFile());
            for (Map<String, String> chosen : List.of(Map.<String, String>of(), Map.of("namespace", "default",
                    "workload", "server"))) {
                Map<String, String> vars = variables(d, chosen);
                for (JsonNode p : d.path("panels")) {
                    for (JsonNode t : p.path("targets")) {
                        String q = substitute(t.path("expr").asText(), vars);
                        // Prometheus answers 400 for invalid PromQL: query() throws with its error.
                        if (PENDING.contains(p.path("title").asText())) {
                            assertThat(prometheus.query(q)).as("pending panel %s now has series: take it off PENDING",
                                    p.path("title").asText()).isEmpty();
                            pending.add(p.path("title").asText());
                        } else if (chosen.isEmpty()) {
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
        assertThat(pending).as("every pending panel exists").isEqualTo(PENDING);
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

    static double panelValue(JsonNode dashboard, String title, Map<String, String> vars) throws IOException {
        for (JsonNode p : dashboard.path("panels")) {
            if (p.path("title").asText().equals(title)) {
                var r = prometheus.query(substitute(p.path("targets").get(0).path("expr").asText(), vars));
                assertThat(r).as(title).hasSize(1);
                return r.getFirst().value();
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
