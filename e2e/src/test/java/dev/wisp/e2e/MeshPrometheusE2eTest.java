package dev.wisp.e2e;

import dev.wisp.testing.PodServer;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.LocalMesh;
import dev.wisp.local.Prometheus;
import dev.wisp.testing.Prerequisites;
import java.nio.file.Path;
import java.time.Duration;
import java.util.OptionalDouble;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Debian's Prometheus scrapes the mesh (both agents and the control plane, as {@link
 * LocalMesh#startPrometheus} configures it) and its PromQL answers equal exactly what the test sent:
 * a known number of connections from a client pod to a server pod on the other node, each with a
 * known number of bytes each way.
 */
class MeshPrometheusE2eTest {
    static final String CLUSTER = "mprom";
    static final int CALLS = 7;
    static final int REQUEST_BYTES = 1000;
    /** {@link PodServer}'s answer to a 1000-byte request: "server 1000\n". */
    static final int ANSWER_BYTES = "server 1000\n".length();
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static Prometheus prometheus;

    @BeforeAll
    static void up() throws Exception {
        Prerequisites.requireCommands("prometheus");
        mesh = PodApps.upWithServer(PodApps.clientServerMesh(CLUSTER, 134, dir), 9000);
        prometheus = mesh.startPrometheus(9090);
    }

    @AfterAll
    static void down() throws Exception {
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    void promqlOverTheScrapedAgentsCountsExactlyTheConnectionsAndBytesSent() throws Exception {
        // Both jobs are scraped: the control plane (underlay loopback) and the two agents.
        await().atMost(Duration.ofSeconds(30)).until(() -> value("sum(up{job=\"wisp-node\"})").orElse(0) == 2
                && value("sum(up{job=\"wisp-control-plane\"})").orElse(0) == 1);
        await().atMost(Duration.ofSeconds(30)).until(() -> value("sum(wisp_xds_connected_agents)").orElse(0) == 2);
        assertThat(value("sum(istio_tcp_connections_opened_total{reporter=\"destination\"})")).as(
                "no connection yet").isEmpty();

        PodApps.Shell client = new PodApps.Shell(mesh, "client");
        String server = mesh.pod("server").ip();
        for (int i = 0; i < CALLS; i++) {
            assertThat(client.call(server, 9000, REQUEST_BYTES)).isEqualTo("ok server " + REQUEST_BYTES);
        }

        String dst = "{reporter=\"destination\"}";
        // The client's agent reports the same connections as the source, labelled with both workloads.
        String src = "{reporter=\"source\",source_workload=\"client\",destination_workload=\"server\"}";
        // Each agent is scraped on its own schedule: wait until both scrapes include every call.
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(500)).untilAsserted(() -> {
            assertThat(value("sum(istio_tcp_connections_opened_total" + dst + ")")).hasValue(CALLS);
            assertThat(value("sum(istio_tcp_connections_closed_total" + dst + ")")).hasValue(CALLS);
            assertThat(value("sum(istio_tcp_received_bytes_total" + dst + ")")).hasValue(CALLS * REQUEST_BYTES);
            assertThat(value("sum(istio_tcp_sent_bytes_total" + dst + ")")).hasValue(CALLS * ANSWER_BYTES);
            assertThat(value("sum(istio_tcp_connections_opened_total" + src + ")")).hasValue(CALLS);
            assertThat(value("sum(istio_tcp_received_bytes_total" + src + ")")).hasValue(CALLS * REQUEST_BYTES);
        });
        System.out.printf("PromQL at %s: %d connections, %d bytes received and %d sent at the destination%n",
                prometheus.url(), CALLS, CALLS * REQUEST_BYTES, CALLS * ANSWER_BYTES);
    }

    static OptionalDouble value(String promql) throws Exception {
        return prometheus.value(promql);
    }
}
