package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.local.load.AgentSampler;
import dev.wisp.local.load.LoadFigures;
import dev.wisp.local.load.LoadRun;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The short, fixed version of the soak ({@code bench/soak/run.sh}): 1,000 connections from two pods
 * on node 1 to an echo pod on node 2 held 15 s through both agents, each echoing every 3 s, beside
 * a few hundred short connections opening and closing and the AuthorizationPolicy rewritten every
 * 5 s (every version allows these calls): not one failure, every connection counted by both agents
 * as carried over mutual TLS, and the sampler's rows of both agents parsed back with the held
 * connections visible in their fds.
 */
@RunsAlone
class LoadE2eTest {
    private static final String CLUSTER = "ld10k";
    // -Dwisp.load.base=B moves the cluster's networks (156 by default); -Dwisp.load.agentArgs adds agent flags.
    private static final int HELD = 1000;

    @Test
    void aThousandHeldConnectionsAndAChurnPassWithoutAFailureAndAreCarriedByBothAgents(@TempDir Path dir)
            throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nsenter");
        LocalMesh mesh = null;
        try {
            MeshSpec.Builder spec = LoadRun.mesh(CLUSTER, Integer.getInteger("wisp.load.base", 156), dir);
            for (String arg : System.getProperty("wisp.load.agentArgs", "").trim().split("\\s+")) {
                if (!arg.isEmpty()) {
                    spec.agentArg(arg); // e.g. the fair share on: -Dwisp.load.agentArgs="--workload-fair-window PT0.02S"
                }
            }
            mesh = LocalMesh.up(spec.build());
            LocalMesh m = mesh;
            double outBefore = carried(mesh, "node1", "source");
            double inBefore = carried(mesh, "node2", "destination");
            Path results = dir.resolve("soak-e2e.txt");
            LoadRun.Outcome o;
            long sampledFrom;
            try (AgentSampler sampler = new AgentSampler(mesh, results, Duration.ofSeconds(2))) {
                sampledFrom = sampler.startMillis();
                o = LoadRun.run(mesh, new LoadRun.Settings(HELD, Duration.ofSeconds(15), 3000, 20, Duration
                        .ofSeconds(5), null), System.out);
            }
            assertThat(o.failures()).as("failed opens and echoes").isEmpty();
            assertThat(o.held()).isEqualTo(HELD);
            assertThat(o.openAtEnd()).as("held connections still open when the run closed them").isEqualTo(HELD);
            assertThat(o.churned()).as("short connections opened and closed").isGreaterThanOrEqualTo(150);
            assertThat(o.policyChanges()).isGreaterThanOrEqualTo(3);
            assertThat(o.echoes()).isGreaterThanOrEqualTo(HELD * 4L);
            long total = o.held() + o.churned();
            await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
                assertThat(carried(m, "node1", "source") - outBefore).as("node1's outbound connections to echo")
                        .isGreaterThanOrEqualTo(total);
                assertThat(carried(m, "node2", "destination") - inBefore).as("node2's inbound connections to echo")
                        .isGreaterThanOrEqualTo(total);
            });

            List<AgentSampler.Sample> rows = AgentSampler.read(results);
            double allOpen = (o.allOpenMs() - sampledFrom) / 1000.0;
            Map<String, List<AgentSampler.Sample>> byNode = LoadFigures.byNode(rows);
            assertThat(byNode).containsOnlyKeys("node1", "node2");
            for (var e : byNode.entrySet()) {
                List<AgentSampler.Sample> s = e.getValue();
                assertThat(s).as(e.getKey() + "'s samples").hasSizeGreaterThanOrEqualTo(5);
                assertThat(s).as(e.getKey()).allSatisfy(x -> {
                    assertThat(x.pid()).isPositive();
                    assertThat(x.rss()).isGreaterThan(32 << 20);
                    assertThat(x.heapAfterGc()).isPositive();
                    assertThat(x.direct()).isNotNaN();
                    assertThat(x.threads()).isGreaterThan(5);
                });
                // One socket per held connection: the captured ones on node 1, the upstream ones on node 2.
                assertThat(s.stream().mapToDouble(AgentSampler.Sample::fds).max().orElseThrow()).as(e.getKey()
                        + "'s most open fds").isGreaterThanOrEqualTo(HELD);
                assertThat(LoadFigures.slopePerHour(s, AgentSampler.Sample::rss)).isFinite();
            }
            assertThat(LoadFigures.summary(rows, allOpen)).hasSize(2 * LoadFigures.FIGURES.size());
            assertThat(LoadFigures.svg("e2e", rows, Map.of("all open", allOpen))).startsWith("<svg").contains(
                    "<polyline").endsWith("</svg>\n");
        } finally {
            PodApps.down(mesh, CLUSTER);
        }
    }

    /**
     * The sum of {@code node}'s agent's {@code istio_tcp_connections_opened_total} to the echo pod
     * over mutual TLS, as {@code reporter} (source: node 1's outbound, destination: node 2's inbound).
     */
    private static double carried(LocalMesh mesh, String node, String reporter) throws IOException {
        return AgentSampler.metrics(mesh, node).lines().filter(l -> l.startsWith("istio_tcp_connections_opened_total{")
                && l.contains("reporter=\"" + reporter + "\"") && l.contains("destination_workload=\"" + LoadRun.SERVER
                        + "\"")
                && l.contains("connection_security_policy=\"mutual_tls\"")).mapToDouble(l -> Double.parseDouble(
                        l
                                .substring(l.lastIndexOf(' ') + 1)))
                .sum();
    }
}
