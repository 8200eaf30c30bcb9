package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalCluster;
import dev.wisp.testing.EchoServer;
import dev.wisp.testing.Netns;
import dev.wisp.testing.Prerequisites;
import dev.wisp.testing.RoundTrip;
import dev.wisp.testing.Socks5Client;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * HBONE over HTTP/3 between two node agents ({@code wisp node} child JVMs, each in its node's
 * namespace). First node 1 dials with {@code --hbone h3} — the echo comes back with an
 * equal SHA-256, node 2 logs the client's verified SPIFFE ID and {@code protocol=h3}, and a capture
 * of the link shows UDP to 15008 and no TCP to 15008; then, with node 1 restarted behind an
 * nftables rule in its namespace that drops UDP to 15008, the same tunnel falls back to HTTP/2 (TCP
 * to 15008 on the link, no {@code protocol=h3}) with {@code --hbone auto}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class Http3MeshE2eTest {
    static final String CLUSTER = "dph3";
    static final ClusterSpec SPEC = ClusterSpec.builder(CLUSTER).nodes(2).base(20).pod("pod-a", "default", "client", 0)
            .pod("pod-b", "default", "server", 1).build();
    static final InetSocketAddress ECHO = new InetSocketAddress("10.21.1.10", 9000);
    static final InetSocketAddress SOCKS = new InetSocketAddress("127.0.0.1", 15080);
    static final String NODE2 = "10.20.0.12";
    static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    static final int HBONE = 15008;

    @TempDir
    static Path dir;
    static LocalCluster cluster;
    static Path state;
    static EchoServer echo;
    /** The agents of node 1 and node 2. */
    static final Process[] agents = new Process[2];

    @BeforeAll
    static void start() throws Exception {
        Prerequisites.requireCommands("ip", "tcpdump", "nft");
        Prerequisites.requireRoot();
        cluster = LocalCluster.up(SPEC);
        assertThat(List.of(cluster.node(1).address(), cluster.pod("pod-b").ip())).as("the addresses this test names")
                .containsExactly(NODE2, ECHO.getHostString());
        state = dir.resolve("state.yaml");
        StringBuilder yaml = new StringBuilder("resources:\n");
        for (int n = 1; n <= 2; n++) {
            yaml.append("  - {name: n%d, node: {name: n%d, addresses: [10.20.0.1%d]}}\n".formatted(n, n, n));
        }
        for (String[] w : new String[][]{{"pod-a", "client", "n1", "10.21.0.10"}, {"pod-b", "server", "n2",
                "10.21.1.10"}}) {
            yaml.append(("  - {name: %1$s, workload: {uid: %1$s, name: %1$s, namespace: default, serviceAccount: %2$s, "
                    + "trustDomain: cluster.local, node: %3$s, addresses: [%4$s], tunnelProtocol: TUNNEL_HBONE, "
                    + "workloadName: %2$s}}\n").formatted((Object[]) w));
        }
        Files.writeString(state, yaml);
        echo = Netns.call(cluster.pod("pod-b").netns(), () -> new EchoServer(ECHO), Duration.ofSeconds(60));
        // The first agent creates the CA directory; the second loads it (one trust domain).
        agents[0] = agent(0, "n1.log", "h3");
        agents[1] = agent(1, "n2.log", "h2");
    }

    /** {@code wisp node} for node {@code index} (n1 dials with {@code --hbone hbone}), ready when this returns. */
    static Process agent(int index, String log, String hbone) throws Exception {
        String name = "n" + (index + 1);
        List<String> args = index == 0
                ? List.of("node", "--node", name, "--state", state.toString(), "--ca-dir", dir.resolve("ca").toString(),
                        "--socks5-workload", "pod-a", "--workers", "1", "--hbone", hbone)
                : List.of("node", "--node", name, "--state", state.toString(), "--ca-dir", dir.resolve("ca").toString(),
                        "--workers", "1");
        Process p = cluster.onNode(cluster.node(index), PodApps.wisp(List.of("-Xmx256m"), args))
                .redirectErrorStream(true).redirectOutput(dir.resolve(log).toFile()).start();
        await().atMost(Duration.ofSeconds(90)).until(() -> PodApps.read(dir.resolve(log))
                .contains("node agent for " + name + " ready"));
        return p;
    }

    @AfterAll
    static void stop() throws Exception {
        for (Process agent : agents) {
            if (agent != null) {
                agent.destroyForcibly().waitFor(20, TimeUnit.SECONDS);
            }
        }
        if (echo != null) {
            echo.close();
        }
        PodApps.down(cluster, CLUSTER);
    }

    static RoundTrip echo(long size) throws Exception {
        Socks5Client.Result r = Netns.call(cluster.node(0).netns(), () -> Socks5Client.connect(SOCKS, ECHO),
                Duration.ofSeconds(60));
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        return RoundTrip.echo(r.socket(), size, 120);
    }

    /** Packets on the link to node 2's HBONE port: UDP (QUIC) and TCP. */
    record ToHbone(long udp, long tcp) {
        static ToHbone of(List<MeshWireGuardE2eTest.IpPacket> packets) {
            var toNode2 = packets.stream().filter(p -> p.dst().getHostAddress().equals(NODE2) && p.dstPort() == HBONE)
                    .toList();
            return new ToHbone(toNode2.stream().filter(p -> p.protocol() == 17).count(),
                    toNode2.stream().filter(p -> p.protocol() == 6).count());
        }
    }

    /** An echo of {@code size} bytes while the link is captured (at least {@code packets} packets). */
    record Captured(RoundTrip trip, ToHbone seen) {}

    static Captured echoCaptured(String name, long size, int packets) throws Exception {
        try (var capture = new MeshWireGuardE2eTest.Capture(cluster.underlayNetns(), dir, name)) {
            RoundTrip trip = echo(size);
            return new Captured(trip, ToHbone.of(capture.stop(packets)));
        }
    }

    @Test
    @Order(1)
    void echoGoesOverQuicWithBothIdentitiesAndNoTcpToTheHbonePort() throws Exception {
        long size = 4L << 20;
        Captured run = echoCaptured("h3", size, 100);
        RoundTrip trip = run.trip();
        ToHbone seen = run.seen();
        assertThat(trip.bytesReceived()).isEqualTo(size);
        assertThat(trip.received()).as("SHA-256 back").isEqualTo(trip.sent());
        // Node 2 verified the client's SVID inside QUIC; node 1 verified node 2's (or no tunnel).
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(PodApps.read(dir.resolve("n2.log")))
                .containsPattern("connection complete direction=inbound .*src.identity=\"" + CLIENT_ID
                        + "\".* protocol=h3 bytes_sent=" + size + " bytes_recv=" + size));
        assertThat(PodApps.read(dir.resolve("n1.log"))).containsPattern(
                "connection complete direction=outbound .* protocol=h3 bytes_sent=" + size);
        assertThat(seen.udp()).as("UDP packets to " + NODE2 + ":15008").isGreaterThan(100);
        assertThat(seen.tcp()).as("TCP packets to " + NODE2 + ":15008").isZero();
    }

    @Test
    @Order(2)
    void withUdpBlockedTheAgentFallsBackToHttp2() throws Exception {
        agents[0].destroyForcibly().waitFor(20, TimeUnit.SECONDS);
        Path rules = dir.resolve("block.nft");
        Files.writeString(rules, """
                table inet dph3block {
                  chain out {
                    type filter hook output priority 0; policy accept;
                    udp dport 15008 drop
                  }
                }
                """);
        Process nft = new ProcessBuilder("ip", "netns", "exec", cluster.node(0).netns(), "nft", "-f",
                rules.toString()).redirectErrorStream(true).start();
        assertThat(nft.waitFor(30, TimeUnit.SECONDS) && nft.exitValue() == 0).as("nft in node 1's namespace").isTrue();
        agents[0] = agent(0, "n1-blocked.log", "auto");
        long size = 1L << 20;
        Captured run = echoCaptured("fallback", size, 20);
        RoundTrip trip = run.trip();
        ToHbone seen = run.seen();
        assertThat(trip.received()).as("SHA-256 back").isEqualTo(trip.sent());
        String n1 = PodApps.read(dir.resolve("n1-blocked.log"));
        assertThat(n1).contains("HTTP/3 unavailable").containsPattern(
                "connection complete direction=outbound .*dst.identity=\"[^\"]+\" bytes_sent=" + size);
        assertThat(seen.tcp()).as("TCP packets to " + NODE2 + ":15008").isGreaterThan(0);
        assertThat(seen.udp()).as("UDP to 15008 is dropped in node 1's namespace, before the link").isZero();
    }
}
