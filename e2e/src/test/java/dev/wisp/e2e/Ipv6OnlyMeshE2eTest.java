package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.base.IpText;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.testing.RawHboneClient;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The mesh on an IPv6-only cluster ({@link ClusterSpec.Stack#IPV6}: no IPv4 address on the underlay,
 * the nodes' links or the pods): the control plane listens on the underlay's IPv6 address and the
 * agents reach it there, capture steers pods' IPv6 connects to the outbound listener on the node's
 * IPv6 address, HBONE runs between the nodes' IPv6 addresses, WireGuard's endpoints and pod prefixes
 * are IPv6. Pod client (node 1) calls pod server (node 2) at its address and at its Service's IPv6
 * VIP; flows, access logs and {@code istio_tcp_connections_opened_total} name the IPv6 workloads; an
 * ALLOW naming another principal shuts the client out and one naming its own lets it in; a DENY of the
 * client's IPv6 {@code /128} refuses it; and a peer that is neither node 1 nor a waypoint, holding
 * the client's own certificate, cannot lift a DENY of its IPv6 prefix by claiming the client pod's
 * address in {@code forwarded: for=} over real HBONE (issue 11's one trust rule).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class Ipv6OnlyMeshE2eTest extends ClientServerMeshCase {
    /** The address block: underlay fd00:206::/64, pods fd00:207:i::/64 (no 10.206/10.207 address exists). */
    static final int BASE = 206;
    static final String CLUSTER = "v6mesh";
    /** The policies the tests apply and delete. */
    static final String ALLOW = "allow-v6-principal", DENY = "deny-client-v6", DENY_HOST = "deny-host-v6";
    static final int PORT = 8080;
    /** Pod client's address, set once the mesh is up. */
    private String client6;

    Ipv6OnlyMeshE2eTest() {
        super(CLUSTER, BASE, ClusterSpec.Stack.IPV6, PORT);
    }

    @BeforeAll
    void meshAnswersOverIpv6() {
        client6 = mesh.pod("client").ip();
        String vip = LocalMesh.serviceAddress(mesh.cluster().spec(), 1);
        // Nothing of the cluster is IPv4: pods, nodes, the control plane's address, the Service's VIP.
        assertThat(List.of(server, client6, vip, mesh.node("node2").address(), mesh.cluster().underlayAddress()))
                .allSatisfy(a -> assertThat(InetAddress.ofLiteral(a).getAddress()).hasSize(16));
        client.awaitAnswers(server, PORT, "server 5", true, Duration.ofSeconds(30));
    }

    @Override
    MeshSpec.Builder spec(MeshSpec.Builder spec) {
        return spec.service(new MeshSpec.ServiceSpec("server", "default", Map.of("app", "server"), LocalMesh
                .serviceAddress(ClusterSpec.builder(CLUSTER).base(BASE).stack(ClusterSpec.Stack.IPV6).build(), 1), 80,
                PORT));
    }

    static String hostPort(String ip, int port) {
        return DualStackE2eTest.hostPort(ip, port);
    }

    /** {@code [ip]:} as the agents write a source with its port following. */
    static String from(String ip) {
        return hostPort(ip, 0).replaceFirst(":0$", ":");
    }

    @Test
    @Order(1)
    void aPodCallIsCapturedAndTunnelledBetweenTheNodesIpv6AddressesAndCounted() throws Exception {
        double before = opened("node2");
        assertThat(client.http(server, PORT)).isEqualTo("ok hello from server; you are " + InetAddress.ofLiteral(
                client6).getHostAddress());
        String dst = hostPort(server, PORT);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.log("node2").lines().filter(
                l -> l.contains("direction=inbound") && l.contains("dst.addr=" + dst)).toList())
                .anySatisfy(l -> assertThat(l).contains("src.addr=" + from(client6),
                        "src.identity=\"" + mesh.spiffeId("client") + "\"")));
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.log("node1").lines().filter(
                l -> l.contains("direction=outbound") && l.contains("dst.addr=" + dst)).toList())
                .anySatisfy(l -> assertThat(l).contains("dst.hbone_addr=" + hostPort(mesh.node("node2").address(),
                        15008), "dst.identity=\"" + mesh.spiffeId("server") + "\"")));
        JsonNode flows = new ObjectMapper().readTree(mesh.agentAdmin("node1", "/flows")).get("flows");
        assertThat(flows).anySatisfy(f -> {
            assertThat(f.get("redirected").asBoolean()).isTrue();
            assertThat(f.get("original_destination").asText()).isEqualTo(dst);
            assertThat(f.get("source").asText()).startsWith(from(client6));
        });
        JsonNode record = await().atMost(Duration.ofSeconds(5)).until(() -> flowRecord("node2", "allowed", "["
                + IpText.of(InetAddress.ofLiteral(client6)) + "]", dst), r -> r != null);
        assertThat(record.get("source_identity").asText()).isEqualTo(mesh.spiffeId("client"));
        // Scraped from [node 2's IPv6]:15020: the destination side counted the client's connection.
        await().atMost(Duration.ofSeconds(10)).until(() -> opened("node2") > before);
        assertThat(mesh.metricsUrl("node2")).startsWith("http://" + hostPort(mesh.node("node2").address(), 15020));
    }

    @Test
    @Order(2)
    void aCallToTheServicesIpv6VipReachesThePod() throws Exception {
        assertThat(client.http(LocalMesh.serviceAddress(mesh.cluster().spec(), 1), 80))
                .startsWith("ok hello from server; you are ");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.log("node1").lines().filter(
                l -> l.contains("direction=outbound") && l.contains("dst.service=server.default.svc.cluster.local"))
                .toList()).anySatisfy(
                        l -> assertThat(l).contains("dst.addr=" + hostPort(server, PORT),
                                "dst.hbone_addr=" + hostPort(mesh.node("node2").address(), 15008))));
    }

    @Test
    @Order(3)
    void anAllowNamingAnotherPrincipalShutsTheClientOutAndOneNamingItsOwnLetsItIn() throws Exception {
        String dst = hostPort(server, PORT);
        underPolicy(ALLOW, () -> {
            allowOnly("ns/default/sa/someone-else");
            JsonNode denied = await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(200)).until(
                    () -> client.http(server, PORT).startsWith("failed")
                            ? flowRecord("node2", "denied", "[" + IpText.of(InetAddress.ofLiteral(client6)) + "]",
                                    dst)
                            : null,
                    r -> r != null && r.get("reason").asText().equals("denied: no ALLOW policy matched"));
            assertThat(denied.get("source_identity").asText()).isEqualTo(mesh.spiffeId("client"));
            // The same policy naming the client's principal lets it in again.
            allowOnly("ns/default/sa/client");
            await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(200)).until(() -> client.http(
                    server, PORT).startsWith("ok hello from server"));
        });
    }

    @Test
    @Order(4)
    void anIpv6IpBlocksDenyRefusesTheClient() throws Exception {
        underPolicy(DENY, () -> {
            denyFrom(DENY, client6 + "/128");
            JsonNode denied = awaitDeniedBy(DENY, server, PORT, "[" + IpText.of(InetAddress.ofLiteral(client6)) + "]",
                    hostPort(server, PORT));
            assertThat(denied.get("source_identity").asText()).isEqualTo(mesh.spiffeId("client"));
        });
    }

    @Test
    @Order(5)
    void aForwardedIpv6ClaimOverRealHboneDoesNotLiftADenyOfThePeersIpv6Prefix() throws Exception {
        // This JVM plays a peer holding a mesh certificate for the client's identity, from the host
        // link's IPv6 address (neither node 1's nor a waypoint's), claiming the client pod's address.
        String host = hostAddress();
        assertThat(InetAddress.ofLiteral(host).getAddress()).hasSize(16);
        CertificateAuthority ca = CertificateAuthority.createOrLoad(mesh.stateDir().resolve("ca"), CaSettings.of(
                "cluster.local", NodeAuthorizer.unrestricted()));
        try (Identities ids = Identities.local(ca, "node1"); RawHboneClient raw = new RawHboneClient()) {
            var tls = new HboneTls(ids).client(SpiffeId.parse(mesh.spiffeId("client")), List.of(SpiffeId
                    .forServiceAccount("cluster.local", "wisp-system", "wisp-node.node2")));
            InetSocketAddress node2 = new InetSocketAddress(mesh.node("node2").address(), 15008);
            var headers = new DefaultHttp2Headers().method("CONNECT").authority(hostPort(server, PORT)).add(
                    "forwarded", "for=\"[" + IpText.of(InetAddress.ofLiteral(client6)) + "]:4444\"");
            byte[] get = "GET / HTTP/1.0\r\nHost: server\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
            // Without a policy the claim is ignored: the server sees the peer's own IPv6 address.
            assertThat(raw.exchange(tls, node2, headers, get)).startsWith("200 HTTP/1.0 200 OK").endsWith(
                    "hello from server; you are " + InetAddress.ofLiteral(host).getHostAddress() + "\n");
            // The underlay's IPv6 prefix (the host link's side of it) is denied; the claimed pod address is not in it.
            assertThat(InetAddress.ofLiteral(host)).isEqualTo(InetAddress.ofLiteral("fd00:" + BASE + "::1"));
            denyFrom(DENY_HOST, "fd00:" + BASE + "::/64");
            String verdict = await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(200)).until(
                    () -> raw.exchange(tls, node2, headers, get), a -> !a.startsWith("200"));
            assertThat(verdict).startsWith("401");
            JsonNode denied = await().atMost(Duration.ofSeconds(5)).until(() -> flowRecord("node2", "denied", "["
                    + IpText.of(InetAddress.ofLiteral(host)) + "]", hostPort(server, PORT)), r -> r != null);
            assertThat(denied.get("reason").asText()).isEqualTo("denied by DENY policy default/" + DENY_HOST);
            assertThat(denied.get("source_identity").asText()).isEqualTo(mesh.spiffeId("client"));
            // The pod whose address was claimed is not in the prefix: its own calls still pass.
            assertThat(client.http(server, PORT)).startsWith("ok hello from server");
        } finally {
            mesh.delete(DENY_HOST + ".yaml");
        }
    }

    @Test
    @Order(6)
    void aPlaintextIpv6CallFromOutsideTheMeshGoesThroughNode2sAgent() throws Exception {
        String host = hostAddress();
        // Until the previous test's DENY of the host's prefix is gone from node 2 (a second or so).
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(200)).until(() -> PodClient.http(server,
                PORT), a -> a.equals("ok hello from server; you are " + host));
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(mesh.log("node2").lines().filter(
                l -> l.contains("direction=inbound") && l.contains("src.addr=" + from(host))).toList()).anySatisfy(
                        l -> assertThat(l).contains("dst.addr=" + hostPort(server, PORT))));
    }

    /** Applies (or replaces) {@link #ALLOW}: pod server admits {@code principal} only. */
    private void allowOnly(String principal) {
        onServer(ALLOW, "ALLOW", "principals: [\"cluster.local/" + principal + "\"]");
    }

    /** A step that applies policy {@code name}: the policy is deleted after it, and the client answered again. */
    private void underPolicy(String name, Step step) throws Exception {
        try {
            step.run();
        } finally {
            mesh.delete(name + ".yaml");
        }
        client.awaitAnswers(server, PORT, "server 5", true, Duration.ofSeconds(10));
    }

    /** A test step that may throw. */
    private interface Step {
        void run() throws Exception;
    }

    /** Node {@code node}'s {@code istio_tcp_connections_opened_total} from workload client (destination side). */
    private double opened(String node) throws Exception {
        return OpenConnectionPolicyE2eTest.httpGet(mesh.metricsUrl(node)).lines().filter(l -> l.startsWith(
                "istio_tcp_connections_opened_total{") && l.contains("reporter=\"destination\"")
                && l.contains(
                        "source_workload=\"client\""))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
    }
}
