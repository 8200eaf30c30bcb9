package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.cli.CaCommand;
import dev.wisp.local.MeshSpec;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.testing.RawHboneClient;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code wisp ca rotate} in a running two-node mesh with short certificates: pod client calls pod
 * server (node 1 → node 2 over HBONE) without a pause while the root is added, signs, and the old one
 * is retired once every certificate of it has expired. Shown: not one call fails and no TLS handshake
 * fails on either agent (the server's {@code istio_tcp_connections_closed_total{response_flags="TLS"}},
 * the client's {@code wisp_hbone_pool_handshake_failures_total}) although new handshakes happen all
 * along (pooled connections stop at their certificates' expiry); the certificates both agents hold
 * for the call (node 2's node identity, pod client's identity on node 1, read from {@code /config_dump})
 * move from the old root to the new one between switch and retire; and a certificate of the old root,
 * valid for an hour and accepted up to the retire, is refused by node 2's agent right after it, with
 * its flow record and access-log line.
 *
 * <p>In the suite: 30 s certificates, about 80 s of calls. The long run (issue 18's "10 minutes of
 * 2-minute certificates") is the same test with {@code -Dwisp.rotation.minutes=10
 * -Dwisp.rotation.ttl=2m -Dwisp.rotation.results=FILE}, which {@code scripts/ca-rotation-soak.sh} runs;
 * the figures go to FILE.
 */
class CaRotationE2eTest extends ClientServerMeshCase {
    static final int PORT = 9000;
    static final Plan PLAN = Plan.fromProperties();
    static final ObjectMapper JSON = new ObjectMapper();
    static final String NODE_ID = "spiffe://cluster.local/ns/wisp-system/sa/wisp-node.node2";
    static final String STALE = "wisp_hbone_server_stale_certificate_streams_total";
    final List<String> failures = new ArrayList<>();
    final Map<String, Instant> steps = new LinkedHashMap<>();
    /** Each sample of the two tracked certificates: identity → (leaf serial, root serial). */
    final List<Map<String, List<String>>> samples = new ArrayList<>();
    int calls;

    /**
     * When each step happens, from the first call: add, switch, then retire one certificate lifetime
     * and a margin after switch (every certificate of the old root has expired by then), then calls
     * until the end.
     */
    record Plan(Duration ttl, Duration add, Duration switchAt, Duration retire, Duration end,
            Optional<Path> results) {
        static Plan fromProperties() {
            Duration ttl = new CaCommand.DurationConverter().convert(System.getProperty("wisp.rotation.ttl", "30s"));
            Optional<Path> results = Optional.ofNullable(System.getProperty("wisp.rotation.results")).map(Path::of);
            String minutes = System.getProperty("wisp.rotation.minutes");
            if (minutes == null) {
                return new Plan(ttl, Duration.ofSeconds(5), Duration.ofSeconds(15), Duration.ofSeconds(15).plus(ttl)
                        .plusSeconds(15), Duration.ofSeconds(15).plus(ttl).plusSeconds(35), results);
            }
            Duration end = Duration.ofMinutes(Long.parseLong(minutes));
            Duration switchAt = end.multipliedBy(2).dividedBy(5);
            Duration retire = switchAt.plus(ttl).plus(ttl.dividedBy(2));
            if (retire.compareTo(end.minusSeconds(30)) > 0) {
                throw new IllegalArgumentException("wisp.rotation.minutes=" + minutes + " is too short for "
                        + "wisp.rotation.ttl=" + ttl + ": retire must come one lifetime after switch");
            }
            return new Plan(ttl, end.dividedBy(5), switchAt, retire, end, results);
        }
    }

    CaRotationE2eTest() {
        // Another name and base let a soak loop run beside the suite's own run of this class.
        super(System.getProperty("wisp.rotation.cluster", "relrot"), Integer.getInteger("wisp.rotation.base", 80),
                PORT);
    }

    @Override
    MeshSpec.Builder spec(MeshSpec.Builder spec) {
        spec.controlPlaneArg("--workload-cert-ttl").controlPlaneArg(PLAN.ttl().toSeconds() + "s");
        return Boolean.getBoolean("wisp.rotation.everyHandshake")
                ? spec.agentArg("--pool-idle-timeout").agentArg("PT0S")
                : spec;
    }

    @Test
    void callsAndHandshakesNeverFailWhileTheRootIsAddedSwitchedAndRetired() throws Exception {
        assertThat(client.call(server, PORT, 5)).isEqualTo("ok server 5");
        String clientId = mesh.spiffeId("client");
        X509Svid ofOldRoot = oldRootCertificate(SpiffeId.parse(clientId));
        String oldRoot = rotation().get("signingRoot").asText();
        Figures before = Figures.read(this);
        sample(clientId);
        assertThat(samples.getFirst().get(NODE_ID)).as("node 2's certificate at the start").element(1)
                .isEqualTo(oldRoot);
        assertThat(samples.getFirst().get(clientId)).as("pod client's certificate at the start").element(1)
                .isEqualTo(oldRoot);

        long log1 = Files.size(mesh.logFile("node1"));
        long log2 = Files.size(mesh.logFile("node2"));
        long start = System.nanoTime();
        String newRoot = null;
        String beforeRetire = null;
        long nextSample = 0;
        while (elapsed(start).compareTo(PLAN.end()) < 0) {
            Duration t = elapsed(start);
            if (!steps.containsKey("add") && t.compareTo(PLAN.add()) >= 0) {
                JsonNode added = JSON.readTree(step("add"));
                assertThat(added.get("phase").asText()).isEqualTo("added");
                newRoot = added.get("addedRoot").asText();
            } else if (!steps.containsKey("switch") && t.compareTo(PLAN.switchAt()) >= 0) {
                assertThat(JSON.readTree(step("switch")).get("phase").asText()).isEqualTo("switched");
            } else if (!steps.containsKey("retire") && t.compareTo(PLAN.retire()) >= 0) {
                // The old root's certificate is still accepted until the retire (the probe is sound).
                beforeRetire = probe(ofOldRoot);
                assertThat(JSON.readTree(step("retire")).get("phase").asText()).isEqualTo("stable");
            }
            if (System.nanoTime() >= nextSample) {
                sample(clientId);
                nextSample = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            }
            String r = client.call(server, PORT, 5);
            calls++;
            if (!r.equals("ok server 5")) {
                failures.add(elapsed(start).toSeconds() + " s: " + r);
            }
        }
        sample(clientId);
        Figures after = Figures.read(this);
        // After the retire, node 2's agent refuses the old root's certificate, counting one refused TLS connection.
        long seq = JSON.readTree(mesh.agentAdmin("node2", "/flows")).get("last_seq").asLong();
        long log = Files.size(mesh.logFile("node2"));
        String afterRetire = probe(ofOldRoot);
        Figures probed = Figures.read(this);
        writeResults(before, after, List.of("old root " + oldRoot + ", new root " + newRoot, "a certificate of the "
                + "old root valid until " + ofOldRoot.notAfter() + ": before retire " + beforeRetire + ", after retire "
                + afterRetire + " (" + (long) probed.handshakeFailures(after) + " TLS refusal counted)"));

        assertThat(failures).as(() -> "failed calls out of " + calls + "; what the agents logged as warnings "
                + "during the calls:\n" + warnings("node1", log1) + warnings("node2", log2)).isEmpty();
        assertThat(calls).isGreaterThan(20);
        assertThat(after.handshakeFailures(before)).as("failed handshakes on either agent").isZero();
        assertThat(after.poolOpened - before.poolOpened).as("new handshakes on node 1 during the run")
                .isGreaterThanOrEqualTo(2);
        assertThat(after.expiries - before.expiries).as("pooled connections ended by certificate expiry")
                .isGreaterThanOrEqualTo(1);
        assertThat(rootsSeen(NODE_ID)).as("node 2's certificate, root by root").containsExactly(oldRoot, newRoot);
        assertThat(rootsSeen(clientId)).as("pod client's certificate, root by root").containsExactly(oldRoot,
                newRoot);
        assertThat(mesh.controlPlaneAdmin("/api/v1/ca/rotation")).contains("\"next\" : \"add\"");

        assertThat(beforeRetire).isEqualTo("200");
        assertThat(afterRetire).startsWith("refused");
        JsonNode refusal = JSON.readTree(mesh.agentAdmin("node2", "/flows?since=" + seq)).get("connections").get(0);
        assertThat(refusal.get("reason").asText()).startsWith("certificate not signed by the mesh CA: "
                + "certificate rejected: the certificate of " + clientId + " does not chain to the trust bundle");
        assertThat(mesh.log("node2", log)).contains("error=\"TLS certificate not signed by the mesh CA");
        assertThat(probed.handshakeFailures(after)).as("the probe's refusal, counted").isEqualTo(1);
    }

    /**
     * A certificate for {@code id} of the root that signs now, valid for an hour: signed with a copy of
     * the control plane's root key (read before the rotation starts), as a workload that kept its credential past the retire would hold.
     */
    private X509Svid oldRootCertificate(SpiffeId id) throws IOException {
        Path ca = mesh.stateDir().resolve("ca");
        CaSettings hour = new CaSettings("cluster.local", Duration.ofHours(1), Duration.ofHours(1), NodeAuthorizer
                .unrestricted(), java.time.Clock.systemUTC());
        return CertificateAuthority.pluggedIn(ca.resolve("root-cert.pem"), ca.resolve("root-key.pem"), hour).issue(id,
                Duration.ofHours(1), "node1");
    }

    /**
     * Opens TLS to node 2's HBONE port presenting {@code svid} and asks for pod server; the HBONE
     * status, or {@code refused: …} when the connection ends without one.
     */
    private String probe(X509Svid svid) throws Exception {
        try (RawHboneClient raw = new RawHboneClient()) {
            String status = raw.request(RawHboneClient.presenting(svid.leaf(), svid.privateKey()),
                    new java.net.InetSocketAddress(mesh.node("node2").address(), 15008), new DefaultHttp2Headers()
                            .method("CONNECT").authority(server + ":" + PORT));
            return status.equals("closed") || status.equals("reset") ? "refused: " + status : status;
        } catch (Exception e) {
            return "refused: " + e;
        }
    }

    /** The first warnings and errors in {@code node}'s log after byte {@code offset}, for a failure's message. */
    private String warnings(String node, long offset) {
        List<String> lines = mesh.warnings(node, offset, 30).stream().map(l -> node + ": " + (l.length() > 2500
                ? l
                        .substring(0, 2500)
                : l)).toList();
        return lines.isEmpty() ? node + ": no warning\n" : String.join("\n", lines) + "\n";
    }

    private String step(String step) throws IOException {
        steps.put(step, Instant.now());
        return mesh.controlPlaneAdminPost("/api/v1/ca/rotate?step=" + step);
    }

    private JsonNode rotation() throws IOException {
        return JSON.readTree(mesh.controlPlaneAdmin("/api/v1/ca/rotation"));
    }

    /** Reads node 2's node certificate and node 1's certificate of {@code clientId} from the agents. */
    private void sample(String clientId) throws IOException {
        Map<String, List<String>> s = new LinkedHashMap<>();
        held("node2", NODE_ID, s);
        held("node1", clientId, s);
        samples.add(s);
    }

    private void held(String node, String id, Map<String, List<String>> into) throws IOException {
        for (JsonNode c : JSON.readTree(mesh.agentAdmin(node, "/config_dump")).get("certificates")) {
            if (c.get("identity").asText().equals(id)) {
                into.put(id, List.of(c.get("serial").asText(), c.get("root_serial").asText()));
            }
        }
    }

    /** The roots {@code id}'s certificates chained to, in the order the samples saw them. */
    private List<String> rootsSeen(String id) {
        Set<String> roots = new LinkedHashSet<>();
        samples.stream().map(s -> s.get(id)).filter(v -> v != null).forEach(v -> roots.add(v.get(1)));
        return List.copyOf(roots);
    }

    /** Distinct certificates of {@code id} seen, less the first: renewals the samples caught. */
    private long renewalsSeen(String id) {
        return samples.stream().map(s -> s.get(id)).filter(v -> v != null).map(v -> v.get(0)).distinct().count()
                - 1;
    }

    private static Duration elapsed(long start) {
        return Duration.ofNanos(System.nanoTime() - start);
    }

    /** The agents' and the control plane's counters this test reads, at one moment. */
    record Figures(double tlsRefused, double staleRefused, double poolFailures, double poolOpened, double expiries,
            double issued) {
        static Figures read(CaRotationE2eTest t) throws IOException {
            String n1 = MeshWireGuardE2eTest.metricsOf(t.mesh, "node1");
            String n2 = MeshWireGuardE2eTest.metricsOf(t.mesh, "node2");
            return new Figures(sum(n1, "istio_tcp_connections_closed_total", "response_flags=\"TLS\"") + sum(n2,
                    "istio_tcp_connections_closed_total", "response_flags=\"TLS\""),
                    sum(n1, STALE, "") + sum(n2, STALE, ""),
                    sum(n1,
                            "wisp_hbone_pool_handshake_failures_total", "")
                            + sum(n2,
                                    "wisp_hbone_pool_handshake_failures_total", ""),
                    sum(n1,
                            "wisp_hbone_pool_connections_opened", ""),
                    sum(n1,
                            "wisp_hbone_pool_certificate_expiries_total", ""),
                    sum(t.mesh
                            .controlPlaneAdmin("/metrics"),
                            "wisp_ca_certificates_issued_total", ""));
        }

        /**
         * Handshakes refused by either side. A stream refused because its connection's certificate
         * expired meanwhile (HBONE 421, which the agent retries on a new connection) carries the same
         * TLS response flag but is no handshake: it is counted apart ({@link #staleStreams}).
         */
        double handshakeFailures(Figures before) {
            return tlsRefused - before.tlsRefused - staleStreams(before) + poolFailures - before.poolFailures;
        }

        double staleStreams(Figures before) {
            return staleRefused - before.staleRefused;
        }
    }

    /** The sum of {@code name}'s samples whose labels contain {@code label} (0 when there is none). */
    static double sum(String metrics, String name, String label) {
        double total = 0;
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "(\\{[^}]*\\})? (\\S+)$").matcher(metrics);
        while (m.find()) {
            if (label.isEmpty() || (m.group(1) != null && m.group(1).contains(label))) {
                total += Double.parseDouble(m.group(2));
            }
        }
        return total;
    }

    /** The run's figures on stdout (the class's surefire output), and in FILE with {@code -Dwisp.rotation.results=FILE}. */
    private void writeResults(Figures before, Figures after, List<String> more) throws IOException {
        StringBuilder out = new StringBuilder();
        out.append("# wisp ca rotate under continuous calls (CaRotationE2eTest, scripts/ca-rotation-soak.sh)\n");
        out.append("finished: ").append(Instant.now()).append('\n');
        out.append("workload certificate lifetime: ").append(PLAN.ttl()).append('\n');
        out.append("run: ").append(PLAN.end()).append(" of back-to-back calls, pod client (node 1) -> pod server ")
                .append("(node 2) over HBONE\n");
        out.append("cores: ").append(Runtime.getRuntime().availableProcessors()).append(", load average at end: ")
                .append(String.format("%.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage()))
                .append(" (").append(Files.readString(Path.of("/proc/loadavg")).strip()).append(")\n");
        out.append("steps (planned offset, wall clock):\n");
        List<Duration> planned = List.of(PLAN.add(), PLAN.switchAt(), PLAN.retire());
        int i = 0;
        for (var e : steps.entrySet()) {
            out.append("  ").append(e.getKey()).append(" at +").append(planned.get(i++).toSeconds()).append(" s, ")
                    .append(e.getValue()).append('\n');
        }
        out.append("calls: ").append(calls).append(", failed: ").append(failures.size()).append('\n');
        out.append("failed handshakes (server TLS refusals + client pool failures, both agents): ").append(
                (long) after.handshakeFailures(before)).append('\n');
        out.append("HBONE connections opened by node 1 (each a handshake): ").append((long) (after.poolOpened
                - before.poolOpened)).append(", ended by certificate expiry: ").append((long) (after.expiries
                        - before.expiries))
                .append('\n');
        out.append("streams refused (421) on a connection whose certificate had just expired, each retried: ").append(
                (long) after.staleStreams(before)).append('\n');
        out.append("certificates issued by the CA: ").append((long) (after.issued - before.issued)).append('\n');
        out.append("renewals seen in /config_dump (samples every 5 s): node 2's node identity ").append(renewalsSeen(
                NODE_ID)).append(", pod client's identity ").append(renewalsSeen(mesh.spiffeId("client"))).append('\n');
        out.append("roots seen: node 2's node identity ").append(rootsSeen(NODE_ID)).append(", pod client's ")
                .append(rootsSeen(mesh.spiffeId("client"))).append('\n');
        more.forEach(line -> out.append(line).append('\n'));
        System.out.print(out);
        if (PLAN.results().isPresent()) {
            Files.createDirectories(PLAN.results().get().toAbsolutePath().getParent());
            Files.writeString(PLAN.results().get(), out);
        }
    }
}
