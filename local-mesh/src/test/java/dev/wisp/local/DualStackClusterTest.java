package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.testing.Prerequisites;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A dual-stack local cluster: IPv6 between pods of different nodes, from the host to a pod, and the
 * IPv6 addresses the control plane is told about (Node InternalIPs, Pod podIPs, Service clusterIPs).
 */
class DualStackClusterTest {
    static final String CLUSTER = "v6lab";
    static final int BASE = 220;

    static ClusterSpec spec() {
        return ClusterSpec.builder(CLUSTER).nodes(2).base(BASE).stack(ClusterSpec.Stack.DUAL).hostLink(true)
                .pod("client", "default", "client", 0).pod("server", "default", "server", 1).build();
    }

    @Test
    void eachClusterAddressHasAnIpv6TwinWithTheSameDigits() {
        // Pure: the objects of a cluster description (no namespace is built).
        ClusterSpec spec = spec();
        assertThat(AddressPlan.ipv6Of("10.221.1.10")).isEqualTo("fd00:221:1::10");
        assertThat(LocalMesh.serviceAddress6(spec, 3)).isEqualTo("fd00:221:250::3");
        assertThat(AddressPlan.ipv6Of("10.220.0.11")).isEqualTo("fd00:220::11");
    }

    @Test
    void podsOnTwoNodesAndTheHostTalkOverIpv6AndTheModelListsTheIpv6Addresses() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nc");
        try (LocalCluster cluster = LocalCluster.up(spec())) {
            LocalCluster.Pod s = cluster.pod("server");
            LocalCluster.Pod c = cluster.pod("client");
            assertThat(cluster.ips(s)).containsExactly("10.221.1.10", "fd00:221:1::10");
            assertThat(cluster.node(1).address6()).isEqualTo("fd00:220::12");
            assertThat(cluster.node(1).podCidr6()).isEqualTo("fd00:221:1::/64");
            assertThat(cluster.execInPod(s, "ip", "-6", "addr", "show", "dev", "eth0")).contains("fd00:221:1::10/64");

            assertTalkOverIpv6(cluster, c, s);
            // The host link routes the pods' IPv6 prefixes too.
            assertThat(Sh.run("ip", "-6", "route", "get", s.ip6())).contains("via " + cluster.node(1).address6());

            MeshSpec mesh = MeshSpec.builder(spec()).workDir(Path.of("/tmp/unused-" + CLUSTER)).service(
                    new MeshSpec.ServiceSpec("server", "default", Map.of("app", "server"), LocalMesh.serviceAddress(
                            spec(), 1), 80, 8080))
                    .build();
            String yaml = MeshObjects.yaml(cluster, mesh);
            assertThat(yaml).contains("address: \"fd00:220::11\"", "address: \"fd00:220::12\"",
                    "- ip: \"fd00:221::10\"", "- ip: \"10.221.0.10\"", "- \"fd00:221:250::1\"");
        }
        assertThat(Leftovers.scan(CLUSTER)).isEmpty();
    }

    @Test
    void anIpv6OnlyClusterHasNoIpv4AddressesAndItsPodsTalkOverIpv6() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nc");
        ClusterSpec spec = ClusterSpec.builder("v6only").nodes(2).base(BASE).stack(ClusterSpec.Stack.IPV6).hostLink(
                true).pod("client", "default", "client", 0).pod("server", "default", "server", 1).build();
        try (LocalCluster cluster = LocalCluster.up(spec)) {
            LocalCluster.Pod s = cluster.pod("server");
            assertThat(s.ip()).isEqualTo("fd00:221:1::10").isEqualTo(s.ip6());
            assertThat(cluster.ips(s)).containsExactly("fd00:221:1::10");
            assertThat(cluster.node(1).address()).isEqualTo("fd00:220::12");
            assertThat(cluster.node(1).podCidr()).isEqualTo("fd00:221:1::/64");
            assertThat(cluster.underlayAddress()).isEqualTo("fd00:220::2");
            assertThat(cluster.execInPod(s, "ip", "-4", "addr", "show", "dev", "eth0")).isBlank();
            assertThat(Sh.run("ip", "netns", "exec", cluster.node(1).netns(), "ip", "-4", "addr", "show"))
                    .doesNotContain(
                            "eth0", "cni0")
                    .contains("127.0.0.1");
            assertTalkOverIpv6(cluster, cluster.pod("client"), s);
            assertThat(Sh.run("ip", "-6", "route", "get", s.ip())).contains("via fd00:220::12");
            // A mesh on it tells the control plane IPv6 addresses only (Node, Pod, Service) and nothing of IPv4.
            String vip = LocalMesh.serviceAddress(spec, 1);
            assertThat(vip).isEqualTo("fd00:221:250::1");
            String yaml = MeshObjects.yaml(cluster, MeshSpec.builder(spec).workDir(Path.of("/tmp/unused-v6only"))
                    .service(new MeshSpec.ServiceSpec("server", "default", Map.of("app", "server"), vip, 80, 8080))
                    .build());
            assertThat(yaml).contains("address: \"fd00:220::12\"", "ip: \"fd00:221:1::10\"", "- \"fd00:221:250::1\"",
                    "- \"fd00:221:1::/64\"").doesNotContainPattern("\\b10\\.22[01]\\.");
            assertThat(cluster.plan().loopback()).isEqualTo("::1");
        }
        assertThat(Leftovers.scan("v6only")).isEmpty();
    }

    /** A line from pod {@code c} reaches {@code nc} in pod {@code s} at {@code s}'s IPv6 address. */
    private static void assertTalkOverIpv6(LocalCluster cluster, LocalCluster.Pod c, LocalCluster.Pod s)
            throws Exception {
        Process server = cluster.startInPod(s, List.of("nc", "-6", "-l", "-N", "8080"));
        int code = await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> {
            Process p = cluster.inPod(c, List.of("/bin/sh", "-c", "echo hello-over-v6 | nc -N -w 2 " + s.ip6()
                    + " 8080")).start();
            p.waitFor();
            return p.exitValue();
        }, exit -> exit == 0);
        assertThat(code).isZero();
        assertThat(new String(server.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isEqualTo(
                "hello-over-v6\n");
    }
}
