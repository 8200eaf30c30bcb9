package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.cli.Wisp;
import dev.wisp.linux.NetworkNamespace;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalCluster;
import dev.wisp.node.NodeRuntime;
import dev.wisp.node.NodeSettings;
import dev.wisp.node.proxy.Outcome;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.node.telemetry.FlowLog;
import dev.wisp.base.Closing;
import dev.wisp.testing.Prerequisites;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code wisp flows} against a real agent in a {@link LocalCluster} without agents of its own: the
 * agent's admin API listens on 127.0.0.1:15000 inside node 1's network namespace only (as in a
 * local mesh), node 2's namespace has no agent.
 */
class ClusterFlowsE2eTest {
    static final String CLUSTER = "flt";
    static final String NODE2 = "wisp-flt-node2";
    static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    static LocalCluster cluster;
    @TempDir
    static Path dir;
    static NodeRuntime agent;

    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        picocli.CommandLine cl = Wisp.commandLine();
        java.io.StringWriter out = new java.io.StringWriter();
        java.io.StringWriter err = new java.io.StringWriter();
        cl.setOut(new java.io.PrintWriter(out));
        cl.setErr(new java.io.PrintWriter(err));
        return new Run(cl.execute(args), out.toString(), err.toString());
    }

    @BeforeAll
    static void start() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip");
        cluster = LocalCluster.up(ClusterSpec.builder(CLUSTER).nodes(2).base(160).build());
        Path state = Files.writeString(dir.resolve("state.yaml"), "resources: []\n");
        NodeSettings settings = NodeSettings.of("node1", new NodeSettings.Source.Standalone(state, dir.resolve("ca")))
                .withBindAddress(InetAddress.ofLiteral("127.0.0.1")).withPorts(new NodeSettings.Ports(0, 0, 0, 0,
                        15000, 0, 0))
                .withWorkerThreads(1);
        // Listeners belong to the namespace of the thread that creates them.
        agent = NetworkNamespace.call(Path.of("/var/run/netns", cluster.node(0).netns()), () -> NodeRuntime.build(
                settings));
        Workload client = Workload.newBuilder().setName("client").setNamespace("default").build();
        Workload server = Workload.newBuilder().setName("server").setNamespace("default").build();
        ConnectionLabels labels = new ConnectionLabels("destination", Optional.of(client),
                Optional.of(SpiffeId.parse(CLIENT_ID)), Optional.of(server),
                Optional.of(SpiffeId.parse("spiffe://cluster.local/ns/default/sa/server")), "", true);
        var flow = agent.telemetry().open("inbound", labels, new InetSocketAddress("10.161.0.10", 40000),
                new InetSocketAddress("10.161.1.10", 8080), null);
        flow.toServer(100);
        flow.toClient(2000);
        flow.close(Outcome.allowed());
        agent.telemetry().open("inbound", labels, new InetSocketAddress("10.161.0.10", 40001),
                new InetSocketAddress("10.161.1.10", 8080), null).close(
                        new Outcome.Policy("default/deny-demo",
                                "denied by default/deny-demo"));
    }

    @AfterAll
    static void stop() throws Exception {
        Closing.inOrder(agent);
        PodApps.down(cluster, CLUSTER);
        assertThat(Files.exists(Path.of("/var/run/netns", cluster.node(0).netns()))).isFalse();
    }

    @Test
    void readsTheAgentInsideTheNodeNamespaceAndNamesTheNodeThatDoesNotAnswer() throws Exception {
        Run r = run("flows", "--cluster", CLUSTER, "-o", "json");
        assertThat(r.exit()).as(r.err()).isEqualTo(1);
        List<JsonNode> rows = r.out().lines().map(l -> {
            try {
                return FlowLog.JSON.readTree(l);
            } catch (Exception e) {
                throw new AssertionError(l, e);
            }
        }).toList();
        assertThat(rows).hasSize(2);
        assertThat(rows.get(0).get("node").asText()).isEqualTo("node1");
        assertThat(rows.get(0).get("source_identity").asText()).isEqualTo(CLIENT_ID);
        assertThat(rows.get(0).get("bytes_sent").asLong()).isEqualTo(100);
        assertThat(rows.get(0).get("bytes_received").asLong()).isEqualTo(2000);
        assertThat(rows.get(1).get("verdict").asText()).isEqualTo("denied");
        assertThat(rows.get(1).get("reason").asText()).isEqualTo("denied by default/deny-demo");
        assertThat(r.err()).contains("node agent on node2 does not answer on 127.0.0.1:15000 in network namespace "
                + NODE2).doesNotContain("\tat ");
    }

    @Test
    void oneNodeAsATable() {
        Run r = run("flows", "--cluster", CLUSTER, "--node", "1");
        assertThat(r.exit()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        assertThat(lines).hasSize(3);
        assertThat(lines.get(0)).startsWith("TIME      NODE").contains("SOURCE (IDENTITY)");
        assertThat(lines.get(1)).contains("node1 in").contains("client (ns/default/sa/client)")
                .contains("server:8080").contains("allowed").contains("100/2.0k");
        assertThat(lines.get(2)).contains("denied");
    }

    @Test
    void followTellsAFailingNodeOnceAndStopsWhenTheClusterIsGone() throws Exception {
        LocalCluster gone = LocalCluster.up(ClusterSpec.builder("flg").nodes(1).base(162).build());
        try {
            picocli.CommandLine cl = Wisp.commandLine();
            java.io.StringWriter out = new java.io.StringWriter();
            java.io.StringWriter err = new java.io.StringWriter();
            cl.setOut(new java.io.PrintWriter(out));
            cl.setErr(new java.io.PrintWriter(err));
            var exit = java.util.concurrent.CompletableFuture.supplyAsync(() -> cl.execute("flows", "--cluster", "flg",
                    "--follow"));
            // Several polls (one a second) find no agent; the failure is told once.
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(30)).until(() -> err.toString()
                    .contains("node agent on node1 does not answer"));
            org.awaitility.Awaitility.await().during(java.time.Duration.ofMillis(2500)).atMost(
                    java.time.Duration.ofSeconds(10)).until(() -> !exit.isDone());
            gone.close();
            assertThat(exit.get(30, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(1);
            assertThat(err.toString().lines().filter(l -> l.contains("does not answer"))).hasSize(1);
            assertThat(err.toString()).contains("error: cluster 'flg' is gone (its network namespaces were removed)");
        } finally {
            PodApps.down(gone, "flg");
        }
    }

    @Test
    void aMissingClusterOrNodeIsOneLine() {
        Run none = run("flows", "--cluster", "nosuchcl");
        assertThat(none.exit()).isEqualTo(1);
        assertThat(none.err().strip()).isEqualTo("error: no cluster 'nosuchcl' on this machine (no network namespace "
                + "wisp-nosuchcl-node1); start one with 'wisp demo'");
        Run node = run("flows", "--cluster", CLUSTER, "--node", "node7");
        assertThat(node.err().strip()).isEqualTo("error: cluster 'flt' has no node 'node7' (nodes: node1, node2)");
    }
}
