package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.cli.demo.UdpEcho;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.testing.Netns;
import dev.wisp.testing.Prerequisites;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * WireGuard carries the pods' IPv6 prefixes in a dual-stack {@link LocalMesh}: each agent publishes
 * both pod CIDRs, so UDP over IPv6 from a pod on node 1 to a pod on node 2 (which HBONE does not
 * carry) crosses the underlay only as WireGuard UDP between the nodes' IPv4 addresses, with neither
 * pod's IPv6 address nor the payload in clear.
 */
class MeshWireGuardIpv6E2eTest {
    static final String CLUSTER = "wg6";
    static final int BASE = 182;
    static final int UDP_PORT = 7000;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static CompletableFuture<Void> udpEcho;
    static volatile boolean stopping;

    @BeforeAll
    static void up() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nsenter", "tcpdump");
        mesh = LocalMesh.up(PodApps.clientServerMesh(CLUSTER, BASE, ClusterSpec.Stack.DUAL, dir).build());
        udpEcho = Netns.start(mesh.pod("server").netns(), () -> {
            try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(UDP_PORT))) {
                UdpEcho.echoUntil(s, () -> stopping);
            }
            return null;
        });
    }

    @AfterAll
    static void down() throws Exception {
        stopping = true;
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    void udpOverIpv6BetweenPodsOnTwoNodesCrossesTheUnderlayOnlyAsWireGuard() throws Exception {
        String clientNs = mesh.pod("client").netns();
        InetAddress server6 = InetAddress.ofLiteral(mesh.pod("server").ip6());
        InetAddress client6 = InetAddress.ofLiteral(mesh.pod("client").ip6());
        // The peers come from the control plane once both agents published their keys and CIDRs.
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500)).until(() -> "warm-up".equals(
                MeshWireGuardE2eTest.udpCall(clientNs, server6, "warm-up")));
        String marker = "WISP-WG6-MARKER-" + Long.toHexString(System.nanoTime());
        String payload = marker + "-" + "x".repeat(400);
        List<MeshWireGuardE2eTest.IpPacket> packets;
        try (var c = new MeshWireGuardE2eTest.Capture(mesh.cluster().underlayNetns(), dir, "udp6", "ip or ip6")) {
            for (int i = 0; i < 5; i++) {
                assertThat(MeshWireGuardE2eTest.udpCall(clientNs, server6, payload)).isEqualTo(payload);
            }
            packets = c.stop(10);
        }
        Set<InetAddress> nodes = Set.of(InetAddress.ofLiteral(mesh.node("node1").address()), InetAddress.ofLiteral(
                mesh.node("node2").address()));
        Set<InetAddress> pods = Set.of(server6, client6, InetAddress.ofLiteral(mesh.pod("server").ip()), InetAddress
                .ofLiteral(mesh.pod("client").ip()));
        MeshWireGuardE2eTest.assertOnlyWireGuard(packets, nodes, pods, payload.length());
        byte[] clear = marker.getBytes(StandardCharsets.US_ASCII);
        assertThat(packets).noneMatch(p -> MeshWireGuardE2eTest.contains(p.whole(), clear));
        // Nothing crossed between the nodes' IPv6 addresses either (the device's endpoint is IPv4).
        Set<InetAddress> nodes6 = Set.of(InetAddress.ofLiteral(mesh.node("node1").address6()), InetAddress
                .ofLiteral(mesh.node("node2").address6()));
        assertThat(packets).noneMatch(p -> nodes6.contains(p.src()) && nodes6.contains(p.dst()) && p
                .protocol() == 17);
    }
}
