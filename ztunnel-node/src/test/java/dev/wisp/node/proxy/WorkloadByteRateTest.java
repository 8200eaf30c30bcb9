package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.node.NodeSettings;
import dev.wisp.node.TwoAgents;
import dev.wisp.testing.RoundTrip;
import dev.wisp.testing.Socks5Client;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * A workload's byte rate ({@code --workload-byte-rate}) on the real relay: two agents on loopback,
 * n1's source workload (pod-a, the SOCKS5 client) held to 2 MiB/s for both directions together.
 */
class WorkloadByteRateTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final long MIB = 1 << 20;
    @AutoClose
    static final TwoAgents mesh = TwoAgents.started(Duration.ofSeconds(5), NodeSettings.DEFAULT_HBONE_PROTOCOL,
            s -> s.withWorkloadLimits(s.workloadLimits().withBytesPerSecond(2 * MIB)));

    @Test
    void aWorkloadsBytesAreHeldToItsRateIntactAndThePausesCounted() throws Exception {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        long start = System.nanoTime();
        // 6 MiB each way: 12 MiB through n1's relay at 2 MiB/s after a burst of 256 KiB, so at
        // least ~5.9 s; a loaded machine only makes it slower, so the bound is a floor with slack.
        RoundTrip trip = RoundTrip.echo(r.socket(), 6 * MIB, 120);
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertThat(trip.bytesReceived()).isEqualTo(6 * MIB);
        assertThat(trip.received()).as("the bytes came back intact").isEqualTo(trip.sent());
        assertThat(took).as("held to 2 MiB/s for 12 MiB relayed").isGreaterThan(Duration.ofSeconds(5));
        double paused = mesh.n1.telemetry().registry().get(Outbound.PAUSED).tag("workload", "default/pod-a")
                .counter().count();
        assertThat(paused).as("n1 paused pod-a's reads").isPositive();
    }

    @Test
    void withTheFairShareOnAWorkloadAloneIsNeverPaused() throws Exception {
        // No byte rate, the fair share on with its measured settings; pod-a is the only workload using n1.
        try (TwoAgents free = TwoAgents.started(Duration.ofSeconds(5), NodeSettings.DEFAULT_HBONE_PROTOCOL,
                s -> s.withWorkloadLimits(s.workloadLimits().withFair(FairShare.Settings.TUNED)))) {
            Socks5Client.Result r = Socks5Client.connect(free.socks(), free.echo.address());
            RoundTrip trip = RoundTrip.echo(r.socket(), 6 * MIB, 120);
            assertThat(trip.received()).isEqualTo(trip.sent());
            assertThat(free.n1.telemetry().registry().get(Outbound.PAUSED).tag("workload", "default/pod-a").counter()
                    .count()).as("12 MiB relayed for pod-a alone, not one pause").isZero();
        }
    }

    @Test
    void theAdminEndpointShowsAndSwitchesTheShareOnLoopback() throws Exception {
        // n1 started without the share: GET /fair says off; POST /fair/switch?on=1 turns it on with the
        // tuned settings, ?on=0 off again; anything else is refused and changes nothing.
        try (HttpClient http = HttpClient.newHttpClient()) {
            String admin = "http://127.0.0.1:" + mesh.n1.addresses().get("admin").getPort();
            HttpResponse<String> got = http.send(HttpRequest.newBuilder(URI.create(admin + "/fair")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(got.statusCode()).as(got.body()).isEqualTo(200);
            JsonNode off = JSON.readTree(got.body());
            assertThat(off.path("on").isBoolean() && !off.path("on").asBoolean()).as(got.body()).isTrue();
            assertThat(off.path("window_ms").asLong()).as(got.body()).isEqualTo(20);
            assertThat(off.path("quantum_bytes").asLong()).as(got.body()).isEqualTo(65536);
            assertThat(off.path("connection_cost_bytes").asLong()).as(got.body()).isEqualTo(65536);
            try {
                for (String on : List.of("1", "0")) {
                    HttpResponse<String> r = http.send(
                            HttpRequest.newBuilder(URI.create(admin + "/fair/switch?on=" + on))
                                    .POST(HttpRequest.BodyPublishers.noBody()).build(),
                            HttpResponse.BodyHandlers.ofString());
                    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
                    assertThat(JSON.readTree(r.body()).path("on").asBoolean(!on.equals("1"))).as(r.body())
                            .isEqualTo(on.equals("1"));
                    HttpResponse<String> now = http.send(HttpRequest.newBuilder(URI.create(admin + "/fair")).build(),
                            HttpResponse.BodyHandlers.ofString());
                    assertThat(JSON.readTree(now.body()).path("on").asBoolean(!on.equals("1")))
                            .as("GET /fair after the switch: " + now.body()).isEqualTo(on.equals("1"));
                }
                HttpResponse<String> bad = http.send(HttpRequest.newBuilder(URI.create(admin + "/fair/switch?on=yes"))
                        .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
                assertThat(bad.statusCode()).as(bad.body()).isEqualTo(400);
                String after = http.send(HttpRequest.newBuilder(URI.create(admin + "/fair")).build(),
                        HttpResponse.BodyHandlers.ofString()).body();
                assertThat(JSON.readTree(after).path("on").asBoolean(true)).as("unchanged by the refused switch: "
                        + after).isFalse();
            } finally {
                http.send(
                        HttpRequest.newBuilder(URI.create(admin + "/fair/switch?on=0")).POST(HttpRequest.BodyPublishers
                                .noBody()).build(),
                        HttpResponse.BodyHandlers.ofString());
            }
        }
    }
}
