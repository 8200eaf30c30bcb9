package dev.wisp.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.testing.Socks5Client;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link NodeRuntime}'s one drain/close order, and a failed build that leaves nothing bound. */
class NodeRuntimeTest {
    static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    static int status(InetSocketAddress at, String path) throws Exception {
        return HTTP.send(
                HttpRequest
                        .newBuilder(
                                URI.create("http://" + at.getAddress().getHostAddress() + ":" + at.getPort() + path))
                        .build(),
                HttpResponse.BodyHandlers.discarding()).statusCode();
    }

    /** Whether a TCP connect to {@code at} is refused (nothing listens there any more). */
    static boolean refuses(InetSocketAddress at) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(at, 2000);
            return false;
        } catch (ConnectException e) {
            return true;
        }
    }

    static void roundTrip(Socket s, DataInputStream in, int bytes) throws IOException {
        s.getOutputStream().write(new byte[bytes]);
        in.readFully(new byte[bytes]);
    }

    @Test
    void drainRefusesNewConnectionsAnswers503AndLetsTheOpenStreamFinishThenCloseStopsTheAdminApi()
            throws Exception {
        try (TwoAgents mesh = new TwoAgents(Duration.ofSeconds(20))) {
            NodeRuntime n2 = mesh.n2;
            Map<String, InetSocketAddress> at = n2.addresses();
            assertThat(status(at.get("readiness"), "/healthz/ready")).isEqualTo(200);
            Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
            assertThat(r.reply()).as("SOCKS5 reply").isZero();
            CompletableFuture<Void> drained;
            try (Socket s = r.socket()) {
                DataInputStream in = new DataInputStream(s.getInputStream());
                roundTrip(s, in, 1000);
                drained = CompletableFuture.runAsync(n2::drain);
                // 1 and 2: readiness says 503 and the listeners are closed, while the stream is open.
                await().atMost(Duration.ofSeconds(10)).until(() -> status(at.get("readiness"),
                        "/healthz/ready") == 503);
                await().atMost(Duration.ofSeconds(10)).until(() -> refuses(at.get("hbone")));
                assertThat(refuses(at.get("outbound"))).as("outbound listener").isTrue();
                assertThat(refuses(at.get("inbound"))).as("inbound listener").isTrue();
                assertThat(refuses(at.get("socks5"))).as("SOCKS5 listener").isTrue();
                // 3: the open stream still carries bytes and the drain waits for it.
                assertThat(drained).isNotDone();
                roundTrip(s, in, 5000);
                s.shutdownOutput();
                assertThat(in.read()).isEqualTo(-1);
            }
            drained.get(15, TimeUnit.SECONDS);
            // Until close, the admin API still answers (readiness keeps saying 503).
            assertThat(status(at.get("admin"), "/config_dump")).isEqualTo(200);
            assertThat(status(at.get("readiness"), "/healthz/ready")).isEqualTo(503);
            assertThat(status(at.get("metrics"), "/metrics")).isEqualTo(200);
            n2.close();
            assertThat(refuses(at.get("admin"))).as("admin after close").isTrue();
            assertThat(refuses(at.get("readiness"))).as("readiness after close").isTrue();
            assertThat(refuses(at.get("metrics"))).as("metrics after close").isTrue();
            n2.close(); // idempotent
        }
    }

    @Test
    void theMetricsListenerServesTheProcessFootprintAndNoXdsSeriesWithoutAControlPlane() throws Exception {
        try (TwoAgents mesh = new TwoAgents(Duration.ofSeconds(5))) {
            InetSocketAddress at = mesh.n2.addresses().get("metrics");
            String body = HTTP.send(HttpRequest.newBuilder(URI.create("http://" + at.getAddress().getHostAddress() + ":"
                    + at.getPort() + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
            // The same process's figures as the process itself sees them (both agents run in this JVM).
            assertThat(series(body, "process_resident_memory_bytes")).isGreaterThan(16 * 1024 * 1024);
            assertThat(series(body, "process_open_fds")).isGreaterThan(10)
                    .isLessThanOrEqualTo(series(body, "process_max_fds"));
            assertThat(series(body, "process_cpu_seconds_total")).isPositive();
            assertThat(series(body, "process_start_time_seconds")).isCloseTo(
                    ProcessHandle.current().info().startInstant().orElseThrow().toEpochMilli() / 1e3,
                    org.assertj.core.api.Assertions.within(5.0));
            assertThat(series(body, "jvm_threads_live_threads")).isGreaterThan(2);
            assertThat(body).contains("jvm_memory_used_bytes{area=\"heap\"");
            // Standalone agents (no control plane) have no workload discovery stream and no wisp_xds_* series:
            // a 0 would read as "not connected" on the node agent dashboard and fire WispAgentXdsDisconnected.
            assertThat(body).doesNotContain("wisp_xds_");
        }
    }

    /** The first sample of {@code name} in a Prometheus text exposition. */
    static double series(String body, String name) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^" + name + "(?:\\{[^}]*\\})? (\\S+)$")
                .matcher(body);
        assertThat(m.find()).as(name + " on /metrics").isTrue();
        return Double.parseDouble(m.group(1));
    }

    /**
     * A taken admin port means the node's agent runs: a second one would share its listeners
     * ({@code SO_REUSEPORT}) unasked, so it is refused before it binds any, unless it takes over.
     */
    @Test
    void aSecondAgentOfANodeIsRefusedUnlessItTakesOver(@TempDir Path dir) throws Exception {
        InetAddress loopback = InetAddress.ofLiteral("127.0.0.1");
        try (ServerSocket busy = new ServerSocket(0, 1, loopback)) {
            NodeSettings settings = TwoAgents.settings(dir, "n1", "127.0.0.1", Duration.ofSeconds(1)).withPorts(
                    new NodeSettings.Ports(0, 0, 0, 0, busy.getLocalPort(), 0, 0));
            assertThatThrownBy(() -> NodeRuntime.build(settings)).isInstanceOf(IOException.class)
                    .hasMessageContaining("the admin port " + busy.getLocalPort() + " is in use")
                    .hasMessageContaining("--takeover");
            // Taking over, it asks whoever holds that port to hand over: this one is no agent.
            assertThatThrownBy(() -> NodeRuntime.build(settings.withTakeover(true))).isInstanceOf(IOException.class)
                    .hasMessageContaining("nothing to take over");
        }
    }

    @Test
    void aBuildThatCannotBindClosesWhatItHadStarted(@TempDir Path dir) throws Exception {
        InetAddress loopback = InetAddress.ofLiteral("127.0.0.1");
        int hbonePort;
        try (ServerSocket probe = new ServerSocket(0, 1, loopback)) {
            hbonePort = probe.getLocalPort();
        }
        try (ServerSocket busy = new ServerSocket(0, 1, loopback)) {
            NodeSettings settings = TwoAgents.settings(dir, "n1", "127.0.0.1", Duration.ofSeconds(1)).withPorts(
                    new NodeSettings.Ports(0, 0, hbonePort, 0, 0, busy.getLocalPort(), 0));
            assertThatThrownBy(() -> NodeRuntime.build(settings)).isInstanceOf(IOException.class)
                    .hasMessageContaining("cannot listen for the metrics").hasMessageContaining(String.valueOf(
                            busy.getLocalPort()));
        }
        // The HBONE listener, bound before the admin API failed, was closed again.
        try (ServerSocket again = new ServerSocket(hbonePort, 1, loopback)) {
            assertThat(again.getLocalPort()).isEqualTo(hbonePort);
        }
    }

    @Test
    void aBadStateFileIsNamed(@TempDir Path dir) throws Exception {
        Path state = Files.writeString(dir.resolve("state.yaml"), "resources: 3\n");
        NodeSettings settings = NodeSettings.of("n1", new NodeSettings.Source.Standalone(state, dir.resolve("ca")))
                .withPorts(NodeSettings.Ports.EPHEMERAL).withBindAddress(InetAddress.ofLiteral("127.0.0.1"));
        assertThatThrownBy(() -> NodeRuntime.build(settings)).isInstanceOf(IOException.class).hasMessageContaining(
                "cannot load the state file " + state).hasMessageContaining("expected a top-level 'resources' list");
    }
}
