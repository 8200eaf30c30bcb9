package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.Leftovers;
import dev.wisp.local.LocalCluster;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 4's "Must show", end to end: two node agents ({@code wisp node --capture}, child JVMs in
 * their nodes' cgroups and network namespaces) capture the pods of a {@link LocalCluster} with
 * eBPF. Pods: {@code a} (node 1, in the mesh), {@code x} (node 1, outside the mesh), {@code b}
 * (node 2, STRICT) and {@code c} (node 2, PERMISSIVE), each but {@code a} running the demo HTTP
 * server on 8080. The methods run in order on one cluster; the last one removes pod a.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CaptureE2eTest {
    static final String CLUSTER = "capt";
    static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    @TempDir
    static Path dir;
    static LocalCluster cluster;
    static LocalCluster.Pod a;
    static LocalCluster.Pod x;
    static LocalCluster.Pod b;
    static LocalCluster.Pod c;
    static final List<Process> processes = new ArrayList<>();
    static Process agent1;
    static int agent1Runs;

    @BeforeAll
    static void up() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "curl", "bpftool", "nsenter");
        cluster = LocalCluster.up(ClusterSpec.builder(CLUSTER).nodes(2).base(212).pod("a", "default", "client", 0)
                .pod("x", "outside", "x", 0).pod("b", "default", "server", 1).pod("c", "default", "other", 1)
                .build());
        a = cluster.pod("a");
        x = cluster.pod("x");
        b = cluster.pod("b");
        c = cluster.pod("c");
        Files.writeString(dir.resolve("state.yaml"), "resources:\n" + node(0) + node(1) + workload(a, "PERMISSIVE")
                + workload(b, "STRICT") + workload(c, "PERMISSIVE"));
        for (LocalCluster.Pod p : List.of(x, b, c)) {
            processes.add(cluster.inPod(p, List.of(java(), "-Xmx128m", "-cp", System.getProperty("java.class.path"),
                    "dev.wisp.cli.Wisp", "demo-app", "server", "--port", "8080", "--name", p.name().toUpperCase()))
                    .redirectErrorStream(true).redirectOutput(dir.resolve(p.name() + ".log").toFile()).start());
        }
        Files.createDirectories(pods(0));
        Files.createDirectories(pods(1));
        cluster.writePodFile(a, pods(0));
        cluster.writePodFile(b, pods(1));
        cluster.writePodFile(c, pods(1));
        // The first agent creates the CA directory, the second loads it: one trust domain.
        agent1 = startAgent(0);
        await().atMost(Duration.ofSeconds(60)).until(() -> log(agentLog(0)).contains("enrolled pod a"));
        processes.add(startAgentProcess(1, "n2.log"));
        await().atMost(Duration.ofSeconds(60)).until(() -> log(dir.resolve("n2.log")).contains("enrolled pod b")
                && log(dir.resolve("n2.log")).contains("enrolled pod c"));
        for (LocalCluster.Pod p : List.of(x, b, c)) {
            await().atMost(Duration.ofSeconds(30))
                    .until(() -> run(cluster.inPod(p, List.of("curl", "-sS", "-m", "2", "http://127.0.0.1:8080/")))
                            .out().startsWith("hello from"));
        }
    }

    @AfterAll
    static void down() throws Exception {
        try {
            for (Process p : processes) {
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
            if (agent1 != null) {
                agent1.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } finally {
            if (cluster != null) {
                cluster.close();
                assertThat(Leftovers.scan(CLUSTER)).as("what the cluster left behind").isEmpty();
            }
        }
    }

    @Test
    @Order(1)
    void curlInPodAReachesPodBOverHboneWithoutProxySettings() throws Exception {
        String out = curlFrom(a, b);
        assertThat(out).as("reply and getpeername (curl's remote_ip) in pod a")
                .isEqualTo("hello from B\n" + b.ip() + ":8080");
        // B's agent logged A's SPIFFE ID (from A's client certificate) for the HBONE stream.
        await().atMost(Duration.ofSeconds(10)).until(() -> log(dir.resolve("n2.log")).lines()
                .anyMatch(l -> l.contains("direction=inbound") && l.contains("src.identity=\"" + CLIENT_ID + "\"")
                        && l.contains("dst.addr=" + b.ip() + ":8080")));
        // The agent's flow ring saw the redirected connect with its original destination.
        JsonNode flows = new ObjectMapper().readTree(run(cluster.onNode(cluster.node(0), List.of("curl", "-sS",
                "-m", "5", "http://127.0.0.1:15000/flows"))).out());
        assertThat(flows.get("flows")).anySatisfy(f -> {
            assertThat(f.get("type").asText()).isEqualTo("OPENED");
            assertThat(f.get("redirected").asBoolean()).isTrue();
            assertThat(f.get("original_destination").asText()).isEqualTo(b.ip() + ":8080");
            assertThat(f.get("source").asText()).startsWith(a.ip() + ":");
        });
    }

    @Test
    @Order(2)
    void plaintextFromOutsideTheMeshIsCapturedInboundRefusedUnderStrictAcceptedUnderPermissive() throws Exception {
        Sh strict = run(cluster.inPod(x, curl(b)));
        assertThat(strict.exit()).as("curl from x to STRICT b: " + strict.out()).isNotZero();
        assertThat(strict.out()).doesNotContain("hello from B");
        await().atMost(Duration.ofSeconds(10)).until(() -> log(dir.resolve("n2.log")).lines().anyMatch(l -> l
                .contains("src.addr=" + x.ip()) && l.contains("plaintext refused: workload b requires mTLS")));

        assertThat(curlFrom(x, c)).isEqualTo("hello from C\n" + c.ip() + ":8080");
        // Captured: C's agent carried it (its access log names x as the source), not a direct hop.
        await().atMost(Duration.ofSeconds(10)).until(() -> log(dir.resolve("n2.log")).lines().anyMatch(l -> l
                .contains("connection complete") && l.contains("src.addr=" + x.ip())
                && l.contains("dst.addr=" + c
                        .ip() + ":8080")
                && !l.contains("error=")));
    }

    /**
     * The kubelet's probes: they come from the node itself (its address on the pods' bridge), and
     * reach a STRICT pod's application directly, as Istio lets its SNATed probe address through:
     * capture's inbound steering passes sources in its bypass set (the node's addresses), so the
     * agent never sees them. A pod on the same node cannot make that connection: its packets carry
     * its own address, which the previous case shows refused.
     */
    @Test
    @Order(2)
    void aProbeFromTheNodeReachesAStrictPodsApplicationWithoutTheAgent() throws Exception {
        LocalCluster.Node node2 = cluster.node(1);
        Sh probe = run(cluster.onNode(node2, curl(b)));
        assertThat(probe.exit()).as("curl from node 2 itself to STRICT b: " + probe.out()).isZero();
        assertThat(probe.out()).isEqualTo("hello from B\n" + b.ip() + ":8080");
        assertThat(log(dir.resolve("n2.log")).lines().filter(l -> l.contains("src.addr=" + node2.podGateway() + ":")))
                .as("node 2's agent carried or refused nothing of the node's own").isEmpty();
    }

    @Test
    @Order(3)
    void restartingTheAgentLeavesOneSetOfProgramsAndCaptureKeepsWorking() throws Exception {
        Map<String, Integer> before = attachTypes(a.cgroup());
        assertThat(before).as("programs on pod a's cgroup").containsKeys("cgroup_inet4_connect", "cgroup_sock_ops",
                "cgroup_inet4_getpeername", "cgroup_inet4_bind");
        assertThat(before.values()).allMatch(n -> n == 1);
        assertThat(attachTypes(cluster.node(0).cgroup())).containsEntry("cgroup_getsockopt", 1);

        agent1.destroy();
        assertThat(agent1.waitFor(30, TimeUnit.SECONDS)).as("agent 1 stopped").isTrue();
        // While the agent is away, pod a stays captured: an app bound in the agent's place (cgroup,
        // address, port) gets a's connection and reads B:8080 with getsockopt(SO_ORIGINAL_DST).
        Path probeLog = dir.resolve("probe.log");
        Process probe = cluster.agentOnNode(cluster.node(0), List.of(java(), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), OriginalDstProbe.class.getName(), cluster.node(0)
                        .address(),
                "15001"))
                .redirectErrorStream(true).redirectOutput(probeLog.toFile()).start();
        processes.add(probe);
        await().atMost(Duration.ofSeconds(30)).until(() -> log(probeLog).contains("listening"));
        run(cluster.inPod(a, List.of("curl", "-sS", "-m", "3", "http://" + b.ip() + ":8080/")));
        assertThat(probe.waitFor(20, TimeUnit.SECONDS)).as("probe done: " + log(probeLog)).isTrue();
        assertThat(log(probeLog)).contains("ORIGINAL_DST " + b.ip() + ":8080");

        agent1 = startAgent(0);
        await().atMost(Duration.ofSeconds(60)).until(() -> log(agentLog(0)).contains("enrolled pod a"));
        assertThat(attachTypes(a.cgroup())).as("programs on pod a's cgroup after the restart").isEqualTo(before);
        assertThat(attachTypes(cluster.node(0).cgroup())).containsEntry("cgroup_getsockopt", 1);
        assertThat(curlFrom(a, b)).isEqualTo("hello from B\n" + b.ip() + ":8080");
    }

    @Test
    @Order(4)
    void removingPodARestoresDirectConnections() throws Exception {
        cluster.deletePodFile(a, pods(0));
        await().atMost(Duration.ofSeconds(20)).until(() -> log(agentLog(0)).contains("removed pod a"));
        assertThat(attachTypes(a.cgroup())).as("programs on pod a's cgroup").isEmpty();
        // With no agent at all, a's connections work: nothing redirects them any more.
        agent1.destroy();
        assertThat(agent1.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(curlFrom(a, x)).isEqualTo("hello from X\n" + x.ip() + ":8080");
    }

    static String curlFrom(LocalCluster.Pod from, LocalCluster.Pod to) {
        return await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(300))
                .until(() -> run(cluster.inPod(from, curl(to))), r -> r.exit() == 0).out();
    }

    static List<String> curl(LocalCluster.Pod to) {
        return List.of("curl", "-sS", "-m", "10", "-w", "%{remote_ip}:%{remote_port}", "http://" + to.ip()
                + ":8080/");
    }

    /** {@code bpftool cgroup show}: how many programs of each attach type sit on {@code cgroup}. */
    static Map<String, Integer> attachTypes(Path cgroup) throws IOException {
        Map<String, Integer> counts = new TreeMap<>();
        String json = run(new ProcessBuilder("bpftool", "-j", "cgroup", "show", cgroup.toString())).out().strip();
        if (json.isEmpty()) {
            return counts;
        }
        for (JsonNode n : new ObjectMapper().readTree(json)) {
            counts.merge(n.get("attach_type").asText(), 1, Integer::sum);
        }
        return counts;
    }

    static Process startAgent(int node) throws IOException {
        agent1Runs++;
        return startAgentProcess(node, "n1-run" + agent1Runs + ".log");
    }

    static Path agentLog(int node) {
        return dir.resolve("n1-run" + agent1Runs + ".log");
    }

    static Process startAgentProcess(int node, String logName) throws IOException {
        LocalCluster.Node n = cluster.node(node);
        return cluster.agentOnNode(n, List.of(java(), "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp",
                System.getProperty("java.class.path"), "dev.wisp.cli.Wisp", "node", "--node", n.name(), "--state",
                dir.resolve("state.yaml").toString(), "--ca-dir", dir.resolve("ca").toString(), "--workers", "1",
                "--drain-timeout", "PT1S", "--capture", "--pods-dir", pods(node).toString(), "--capture-address",
                n.address(), "--bpf-pin-root", "/sys/fs/bpf/wisp/" + CLUSTER + "/" + n.name()))
                .redirectErrorStream(true).redirectOutput(dir.resolve(logName).toFile()).start();
    }

    static Path pods(int node) {
        return dir.resolve("pods-node" + (node + 1));
    }

    static String node(int i) {
        LocalCluster.Node n = cluster.node(i);
        return "  - name: " + n.name() + "\n    node: {name: " + n.name() + ", addresses: [" + n.address() + "]}\n";
    }

    static String workload(LocalCluster.Pod p, String mtls) {
        return "  - name: " + p.name() + "\n    workload: {uid: " + p.name() + ", name: " + p.name()
                + ", namespace: default, serviceAccount: " + p.spec().serviceAccount()
                + ", trustDomain: cluster.local, node: " + p.node().name() + ", addresses: [" + p.ip()
                + "], tunnelProtocol: TUNNEL_HBONE, workloadName: " + p.name() + ", mtlsMode: " + mtls + "}\n";
    }

    static String java() {
        return ProcessHandle.current().info().command().orElse("java");
    }

    record Sh(int exit, String out) {}

    static Sh run(ProcessBuilder pb) throws IOException {
        Process p = pb.redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Sh(-1, out);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        return new Sh(p.exitValue(), out);
    }

    static String log(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file) : "";
        } catch (IOException e) {
            return "";
        }
    }
}
