package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.base.IpText;
import dev.wisp.local.LocalMesh;
import java.net.InetAddress;
import java.time.Duration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * IPv6 through the mesh on a dual-stack cluster: pod client (node 1) calls pod server (node 2) at
 * its IPv6 address and at its Service's IPv6 VIP; capture steers the IPv6 connect into node 1's
 * agent (its flow ring has the redirected connect), which tunnels it over HBONE to node 2's IPv6
 * address, whose agent sees the client's SPIFFE identity and IPv6 address and connects to the
 * application from that address (what the application sees); and an {@code ipBlocks}
 * DENY naming the client's IPv6 address refuses the IPv6 call, named in node 2's flow record, while
 * the client's IPv4 calls go on. A plaintext IPv6 call from the host (PERMISSIVE) goes through node 2's
 * agent too, the server seeing the host's IPv6 address. The mesh is {@link SharedMeshes.Kind#DUAL},
 * which {@link DualStackDnsE2eTest} shares.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@SharedMeshes.OnSharedMesh(SharedMeshes.Kind.DUAL)
@Order(4)
class DualStackE2eTest extends ClientServerMeshCase {
    static final int PORT = 8080;
    static final String DENY = "deny-client-v6";
    /** The Service's IPv4 VIP, {@code LocalMesh.serviceAddress(cluster, 1)} of the shared mesh's base. */
    static final String VIP4 = "10." + (SharedMeshes.DUAL_BASE + 1) + ".250.1";
    String vip6;
    String server6;
    String client6;

    DualStackE2eTest() {
        super();
    }

    @BeforeAll
    void meshAnswersOverIpv6() {
        server6 = mesh.pod("server").ip6();
        client6 = mesh.pod("client").ip6();
        vip6 = LocalMesh.serviceAddress6(mesh.cluster().spec(), 1);
        assertThat(LocalMesh.serviceAddress(mesh.cluster().spec(), 1)).isEqualTo(VIP4);
        client.awaitAnswers(server6, PORT, "server 5", true, Duration.ofSeconds(30));
    }

    /** {@code ip} as the agents write it ({@code [fd00:223:1::10]:port} for IPv6, RFC 5952). */
    static String hostPort(String ip, int port) {
        return IpText.hostPort(InetAddress.ofLiteral(ip), port);
    }

    @Test
    @Order(1)
    void aCallToThePodsIpv6AddressIsCapturedAndTunnelledToTheServerNodesIpv6Address() throws Exception {
        // The application sees the client pod's IPv6 address (TransparentUpstream), not node 2's.
        assertThat(client.http(server6, PORT)).isEqualTo("ok hello from server; you are " + InetAddress.ofLiteral(
                client6).getHostAddress());
        String dst = hostPort(server6, PORT);
        // Node 2's agent checked the client's certificate and saw its IPv6 address.
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.log("node2").lines().filter(
                l -> l.contains("direction=inbound") && l.contains("dst.addr=" + dst)).toList())
                .anySatisfy(l -> assertThat(
                        l).contains("src.addr=" + hostPort(client6, 0).replaceFirst(":0$", ":"),
                                "src.identity=\"" + mesh.spiffeId("client") + "\"")));
        // Node 1's agent tunnelled it to node 2's IPv6 address, expecting the server's identity.
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.log("node1").lines().filter(
                l -> l.contains("direction=outbound") && l.contains("dst.addr=" + dst)).toList())
                .anySatisfy(l -> assertThat(
                        l).contains("dst.hbone_addr=" + hostPort(mesh.node("node2").address6(), 15008),
                                "dst.identity=\"" + mesh.spiffeId("server") + "\"")));
        // Capture steered the pod's IPv6 connect into the agent (not around it).
        JsonNode flows = new ObjectMapper().readTree(mesh.agentAdmin("node1", "/flows")).get("flows");
        assertThat(flows).anySatisfy(f -> {
            assertThat(f.get("redirected").asBoolean()).isTrue();
            assertThat(f.get("original_destination").asText()).isEqualTo(dst);
            assertThat(f.get("source").asText()).startsWith(hostPort(client6, 0).replaceFirst(":0$", ":"));
        });
        // Node 2's flow record carries both IPv6 addresses and the client's identity.
        JsonNode record = await().atMost(Duration.ofSeconds(5)).until(() -> flowRecord("node2", "allowed", "["
                + IpText.of(InetAddress.ofLiteral(client6)) + "]", dst), r -> r != null);
        assertThat(record.get("source_identity").asText()).isEqualTo(mesh.spiffeId("client"));
    }

    @Test
    @Order(2)
    void aCallToTheServicesIpv6VipReachesThePodsIpv6Address() throws Exception {
        assertThat(client.http(vip6, 80)).startsWith("ok hello from server; you are ");
        String dst = hostPort(server6, PORT);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.log("node1").lines().filter(
                l -> l.contains("direction=outbound") && l.contains("dst.service=server.default.svc.cluster.local"))
                .toList()).anySatisfy(
                        l -> assertThat(l).contains("dst.addr=" + dst, "dst.hbone_addr=" + hostPort(
                                mesh.node("node2").address6(), 15008))));
    }

    @Test
    @Order(3)
    void aPlaintextIpv6CallFromOutsideTheMeshGoesThroughNode2sAgentAndTheServerSeesItsAddress() throws Exception {
        String host6 = hostAddress(server6);
        assertThat(InetAddress.ofLiteral(host6).getAddress()).hasSize(16);
        // PERMISSIVE (no PeerAuthentication): node 2's in-pod 15006 listener on the pod's IPv6 address.
        assertThat(PodClient.http(server6, PORT)).isEqualTo("ok hello from server; you are " + host6);
        String from = hostPort(host6, 0).replaceFirst(":0$", ":");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.log("node2").lines().filter(
                l -> l.contains("direction=inbound") && l.contains("src.addr=" + from)).toList()).anySatisfy(
                        l -> assertThat(l).contains("dst.addr=" + hostPort(server6, PORT))));
    }

    @Test
    @Order(4)
    void anIpv6IpBlocksDenyRefusesTheIpv6CallAndNamesThePolicyWhileIpv4CallsGoOn() throws Exception {
        String dst = hostPort(server6, PORT);
        try {
            denyFrom(DENY, client6 + "/128");
            JsonNode denied = awaitDeniedBy(DENY, server6, PORT, "[" + IpText.of(InetAddress.ofLiteral(client6))
                    + "]", dst);
            assertThat(denied.get("source_identity").asText()).isEqualTo(mesh.spiffeId("client"));
            // The same client over IPv4 is not in the block.
            assertThat(client.http(server, PORT)).startsWith("ok hello from server");
        } finally {
            mesh.delete(DENY + ".yaml");
        }
        client.awaitAnswers(server6, PORT, "server 5", true, Duration.ofSeconds(10));
    }
}
