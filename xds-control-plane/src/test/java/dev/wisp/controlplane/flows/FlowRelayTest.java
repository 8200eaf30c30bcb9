package dev.wisp.controlplane.flows;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.node.admin.AdminServer;
import dev.wisp.node.telemetry.FlowLog;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.spiffe.tls.SpiffeTls;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslProvider;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The relay against a real agent flows listener ({@link AdminServer#serveFlowsToRelay}) on loopback,
 * both with SVIDs of one in-memory CA: mutual TLS with the expected identities, merging, following,
 * and pulling only while someone reads. The relay runs on a faster clock ({@link #PACING}: 250 ms rounds, 2 s
 * linger, 750 ms pairing grace; the product's are 1 s, 5 s and 3 s): the same logic, without whole seconds per round.
 */
class FlowRelayTest {
    static final String TD = "cluster.local";
    static final SpiffeId RELAY = SpiffeId.forServiceAccount(TD, "wisp-system", "wisp-control-plane");
    static final SpiffeId NODE = SpiffeId.forServiceAccount(TD, "wisp-system", "wisp-node.n1");
    static final FlowRelay.Pacing PACING = new FlowRelay.Pacing(Duration.ofMillis(250), Duration.ofSeconds(2),
            Duration.ofMillis(750));
    CertificateAuthority ca;
    FlowLog log;
    AdminServer agent;
    InetSocketAddress flowsAt;
    SimpleMeterRegistry registry;
    FlowRelay relay;

    @BeforeEach
    void start() throws Exception {
        ca = CertificateAuthority.inMemory(CaSettings.of(TD, NodeAuthorizer.unrestricted()));
        X509Svid nodeSvid = ca.issue(NODE, null, "n1");
        X509Svid relaySvid = ca.issue(RELAY, null, "control-plane");
        log = new FlowLog(100);
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        agent = AdminServer.start(new AdminServer.Agent("n1", () -> null, Map::of, () -> "", () -> true, log,
                Optional::empty), (l, v) -> {}, any, any, any);
        flowsAt = agent.serveFlowsToRelay(SpiffeTls.forServer(() -> nodeSvid, ca::bundle, SslProvider.JDK), any,
                RELAY);
        registry = new SimpleMeterRegistry();
        NodeDef n1 = new NodeDef(new ObjectRef("Node", "", "n1"), List.of(InetAddress.getLoopbackAddress()), 15008,
                "", "", List.of());
        relay = new FlowRelay(new FlowRelay.Sources(() -> List.of(n1), flowsAt.getPort(), () -> relaySvid,
                ca::bundle), registry, PACING);
    }

    @AfterEach
    void stop() {
        relay.close();
        agent.close();
    }

    static FlowRecord record(String src, String verdict) {
        return new FlowRecord(0, java.time.Instant.now().toString(), "destination", "10.1.0.5:4000", src, "default",
                "", "10.1.1.5:8080", "server", "default", "", "", true, verdict, verdict.equals("denied")
                        ? "denied by DENY policy default/deny-other"
                        : "",
                10, 20, 1);
    }

    /**
     * A read of {@code view} after {@code since} once it holds {@code n} records. A read returns after
     * two rounds of pulls, and on a loaded machine both may time out (the connect's 2 s, the request's
     * 3 s): that read is empty, and a later one brings the records.
     */
    List<ObjectNode> readUntil(FlowRelay.View view, long since, int n) {
        List<List<ObjectNode>> last = new java.util.ArrayList<>(List.of(List.of()));
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> {
            last.set(0, relay.read(view, since, Duration.ofSeconds(10)));
            assertThat(last.get(0)).as("a read of %s after %d (pulls %s, failed %s)", view, since, pulls(), registry
                    .get("wisp_flow_relay_pull_errors").counter().count()).hasSizeGreaterThanOrEqualTo(n);
        });
        return last.get(0);
    }

    double pulls() {
        return registry.get("wisp_flow_relay_pulls").counter().count();
    }

    @Test
    void mergesTheAgentsRecordsWithTheNodeAndItsOwnNumbers() throws Exception {
        log.add(record("client", "allowed"));
        log.add(record("curl", "denied"));
        assertThat(pulls()).isZero();
        List<ObjectNode> got = readUntil(FlowRelay.View.RECORDS, 0, 2);
        assertThat(got).hasSize(2);
        assertThat(got.get(0).path("node").asText()).isEqualTo("n1");
        assertThat(got.get(0).path("seq").asLong()).isEqualTo(1);
        assertThat(got.get(1).path("seq").asLong()).isEqualTo(2);
        assertThat(got.get(1).path("node_seq").asLong()).isEqualTo(2);
        assertThat(got.get(1).path("source_workload").asText()).isEqualTo("curl");
        assertThat(got.get(1).path("reason").asText()).isEqualTo("denied by DENY policy default/deny-other");
        // Only what is new is read again and numbered on.
        log.add(record("client", "allowed"));
        List<ObjectNode> next = readUntil(FlowRelay.View.RECORDS, 2, 1);
        assertThat(next).hasSize(1);
        assertThat(next.get(0).path("seq").asLong()).isEqualTo(3);
    }

    /** One agent's record of a call: {@code reporter} source (the client's agent) or destination (the server's). */
    static FlowRecord side(String reporter, String client, String start, String verdict) {
        return new FlowRecord(0, start, reporter, client, "curl", "other", "", "10.1.1.5:8080", "server", "default", "",
                "", true, verdict, verdict.equals("denied") && reporter.equals("destination")
                        ? "denied by DENY policy default/deny-other"
                        : "",
                0, 0, 1);
    }

    @Test
    void theCallsViewCountsACallBothAgentsRecordedOnce() throws Exception {
        String t = java.time.Instant.now().toString();
        // A denied call and a failed call, each recorded by the client's agent and by the server's.
        log.add(side("source", "10.1.0.5:40001", t, "denied"));
        log.add(side("destination", "10.1.0.5:40001", t, "denied"));
        log.add(side("destination", "10.1.0.5:40002", t, "failed"));
        log.add(side("source", "10.1.0.5:40002", t, "failed"));
        // A call refused before any server agent saw it: only the client's agent recorded it.
        log.add(side("source", "10.1.0.5:40003", t, "failed"));
        assertThat(readUntil(FlowRelay.View.RECORDS, 0, 5)).hasSize(5);
        // The unpaired client record waits for a server record up to the grace, then counts as a call of its own.
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> assertThat(relay.read(FlowRelay.View.CALLS, 0,
                Duration.ofSeconds(10))).hasSize(3));
        List<ObjectNode> calls = relay.read(FlowRelay.View.CALLS, 0, Duration.ofSeconds(10));
        Map<String, Long> byVerdict = calls.stream().collect(java.util.stream.Collectors.groupingBy(f -> f.path(
                "verdict").asText(), java.util.stream.Collectors.counting()));
        assertThat(byVerdict).containsExactlyInAnyOrderEntriesOf(Map.of("denied", 1L, "failed", 2L));
        assertThat(calls).filteredOn(f -> f.path("verdict").asText().equals("denied")).singleElement().satisfies(
                f -> assertThat(f.path("reporter").asText()).isEqualTo("destination"));
        assertThat(calls).filteredOn(f -> f.path("source_address").asText().equals("10.1.0.5:40002"))
                .singleElement().satisfies(f -> assertThat(f.path("reporter").asText()).isEqualTo("destination"));
        assertThat(calls).filteredOn(f -> f.path("source_address").asText().equals("10.1.0.5:40003"))
                .singleElement().satisfies(f -> assertThat(f.path("reporter").asText()).isEqualTo("source"));
        // The view numbers its own lines, so a reader follows it with ?since= as the records view.
        assertThat(calls).extracting(f -> f.path("seq").asLong()).containsExactly(1L, 2L, 3L);
        assertThat(relay.read(FlowRelay.View.CALLS, 3, Duration.ofSeconds(10))).isEmpty();
    }

    @Test
    void pullsOnlyWhileSomeoneReads() throws Exception {
        relay.read(FlowRelay.View.RECORDS, 0, Duration.ofSeconds(10));
        assertThat(pulls()).isPositive();
        // After the linger with nobody reading, the relay stops asking the agents.
        await().atMost(Duration.ofSeconds(60)).until(() -> !relay.pulling());
        double settled = pulls();
        // Ten rounds' time without a pull.
        await().during(PACING.interval().multipliedBy(10)).atMost(Duration.ofSeconds(60)).until(
                () -> pulls() == settled);
        // A follower starts it again and gets new records as they come.
        PipedInputStream in = new PipedInputStream(1 << 16);
        PipedOutputStream out = new PipedOutputStream(in);
        Thread follower = Thread.ofVirtual().start(() -> {
            try {
                relay.follow(FlowRelay.View.RECORDS, relay.read(FlowRelay.View.RECORDS, 0, Duration.ZERO).size(), out);
            } catch (Exception e) {
                // interrupted at the end of the test
            }
        });
        try (BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            await().atMost(Duration.ofSeconds(60)).until(() -> relay.followers() == 1);
            log.add(record("curl", "denied"));
            // Blank lines are the follower's keep-alive, sent while no pull brought anything (a loaded machine).
            String line = lines.readLine();
            long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while (line != null && line.isBlank() && System.nanoTime() < deadline) {
                line = lines.readLine();
            }
            assertThat(line).contains("\"source_workload\":\"curl\"").contains("\"verdict\":\"denied\"");
            assertThat(pulls()).isGreaterThan(settled);
        } finally {
            follower.interrupt();
        }
        await().atMost(Duration.ofSeconds(60)).until(() -> relay.followers() == 0);
    }

    @Test
    void theAgentAnswersOnlyTheRelaysIdentity() throws Exception {
        X509Svid workload = ca.issue(SpiffeId.forServiceAccount(TD, "default", "client"), null, "n1");
        HttpClient other = HttpClient.newBuilder().sslContext(((JdkSslContext) SpiffeTls.forClient(() -> workload,
                ca::bundle, Set.of(NODE), SslProvider.JDK)).context()).version(HttpClient.Version.HTTP_1_1).build();
        HttpResponse<String> r = other.send(HttpRequest.newBuilder(URI.create("https://127.0.0.1:" + flowsAt
                .getPort() + "/flows")).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(403);
        assertThat(r.body()).contains("spiffe://cluster.local/ns/default/sa/client may not read this node's flows");
        // Without a client certificate there is no TLS session at all.
        HttpClient anonymous = HttpClient.newBuilder().sslContext(((JdkSslContext) SpiffeTls
                .forClientWithoutCertificate(ca::bundle, Set.of(NODE), SslProvider.JDK)).context())
                .version(HttpClient.Version.HTTP_1_1).build();
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> anonymous.send(HttpRequest.newBuilder(URI.create(
                "https://127.0.0.1:" + flowsAt.getPort() + "/flows")).build(), HttpResponse.BodyHandlers
                        .ofString()))
                .isInstanceOf(java.io.IOException.class);
    }
}
