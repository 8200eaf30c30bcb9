package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.sun.net.httpserver.HttpServer;
import dev.wisp.testing.Prerequisites;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PrometheusTest {
    @TempDir
    Path dir;

    @Test
    void scrapesATargetAndAnswersPromQl() throws Exception {
        Prerequisites.requireCommands("prometheus");
        AtomicLong opened = new AtomicLong(7);
        HttpServer target = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        target.createContext("/metrics", ex -> {
            byte[] body = ("# TYPE istio_tcp_connections_opened_total counter\n"
                    + "istio_tcp_connections_opened_total{reporter=\"destination\",source_workload=\"client\"} "
                    + opened.get() + "\n").getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().add("Content-Type", "text/plain; version=0.0.4");
            ex.sendResponseHeaders(200, body.length);
            ex.getResponseBody().write(body);
            ex.close();
        });
        target.start();
        int port = freePort();
        try (Prometheus prom = Prometheus.start(List.of(new Prometheus.Job("wisp-node", List.of(new Prometheus.Target(
                "127.0.0.1:" + target.getAddress().getPort(), Map.of("node", "node1"))))), port, dir)) {
            String q = "sum(istio_tcp_connections_opened_total{reporter=\"destination\"})";
            await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(250)).until(() -> prom.value(q)
                    .orElse(-1) == 7.0);
            opened.set(12);
            await().atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofMillis(250)).until(() -> prom.value(q)
                    .orElse(-1) == 12.0);
            List<Prometheus.Sample> samples = prom.query("istio_tcp_connections_opened_total");
            assertThat(samples).singleElement().satisfies(s -> assertThat(s.labels()).containsEntry("node", "node1")
                    .containsEntry("source_workload", "client"));
            assertThatThrownBy(() -> prom.query("sum(")).hasMessageContaining("prometheus refused 'sum('");
        } finally {
            target.stop(0);
        }
    }

    @Test
    void configQuotesLabelsAndTargets() {
        String y = Prometheus.config(List.of(new Prometheus.Job("a\"b", List.of(new Prometheus.Target("10.0.0.1:1",
                Map.of("node", "n\"1"))))));
        assertThat(y).contains("job_name: \"a\\\"b\"").contains("targets: [\"10.0.0.1:1\"]").contains(
                "node: \"n\\\"1\"").contains("scrape_interval: 1s");
    }

    private static int freePort() throws Exception {
        try (var s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }
}
