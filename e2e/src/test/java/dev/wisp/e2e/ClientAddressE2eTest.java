package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.identity.Identities;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.testing.ConfigYaml;
import dev.wisp.testing.RawHboneClient;
import com.fasterxml.jackson.databind.JsonNode;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The destination application sees its client's address (capture's {@code TransparentUpstream}):
 * pod client on node 1 calls pod server on node 2 (a {@link dev.wisp.testing.PodServer}, whose HTTP
 * answer says the peer address its accepted socket has) over HBONE, the test JVM on the host calls
 * it in plaintext (PERMISSIVE), an {@code ipBlocks} ALLOW naming the client pod's address admits it
 * and not the host, one naming the host refuses the client pod (node 2's {@code /flows} says so), a
 * DENY naming the client pod's address is named in the record of the call it refuses, and a
 * {@code forwarded: for=} claim from a peer that is neither a waypoint nor
 * the claimed workload's node does not change what the application sees.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClientAddressE2eTest extends ClientServerMeshCase {
    static final String CLUSTER = "l4cip";
    static final int PORT = 8080;
    static final String POLICY = "allow-one-ip";
    static final String DENY = "deny-client-ip";
    String clientIp;
    String host;

    ClientAddressE2eTest() {
        super(CLUSTER, 74, PORT);
    }

    @BeforeAll
    void meshAnswers() throws Exception {
        clientIp = mesh.pod("client").ip();
        host = hostAddress();
        client.awaitAnswers(server, PORT, "server 5", true, Duration.ofSeconds(30));
    }

    @Test
    @Order(1)
    void theServerSeesTheClientPodsAddressThroughHbone() throws Exception {
        assertThat(client.http(server, PORT)).as(() -> "node 2's upstream source counters: " + upstreamSource())
                .isEqualTo("ok hello from server; you are " + clientIp);
        // Carried over HBONE by both agents: node 2's access log names the client's identity.
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(mesh.log("node2")).contains(
                "src.addr=" + clientIp + ":").contains("src.identity=\"" + mesh.spiffeId("client") + "\""));
        // One per call, not a loop (capture steering the agent's own connection back to the agent made
        // thousands before wisp_own_upstream).
        assertThat(metric("node2", "wisp_upstream_source_transparent_total")).isBetween(1.0, 50.0);
    }

    @Test
    @Order(2)
    void theServerSeesTheAddressOfAPlaintextClientFromOutsideTheMesh() {
        // PERMISSIVE (no PeerAuthentication): node 2's in-pod 15006 listener carries it.
        assertThat(PodClient.http(server, PORT)).isEqualTo("ok hello from server; you are " + host);
        assertThat(host).isNotEqualTo(mesh.node("node2").address());
    }

    @Test
    @Order(3)
    void anIpBlocksAllowNamingTheClientsAddressAdmitsItAndOneNamingAnotherAddressDeniesIt() throws Exception {
        String destination = server + ":" + PORT;
        try {
            allowOnlyFrom(clientIp);
            // In force once plaintext from the host is refused; the client pod's HBONE call is admitted.
            await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100))
                    .until(() -> PodClient.http(server, PORT).startsWith("failed"));
            assertThat(client.http(server, PORT)).isEqualTo("ok hello from server; you are " + clientIp);
            JsonNode hostDenied = await().atMost(Duration.ofSeconds(5)).until(() -> flowRecord("node2", "denied",
                    host, destination), r -> r != null);
            assertThat(hostDenied.get("reason").asText()).startsWith("denied: no ALLOW policy matched");

            allowOnlyFrom(host);
            // In force once the host is admitted again; now the client pod's call is refused.
            await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100))
                    .until(() -> PodClient.http(server, PORT).startsWith("ok"));
            assertThat(client.http(server, PORT)).startsWith("failed");
            JsonNode denied = await().atMost(Duration.ofSeconds(5)).until(() -> flowRecord("node2", "denied",
                    clientIp, destination), r -> r != null);
            assertThat(denied.get("reason").asText()).startsWith("denied: no ALLOW policy matched");
            assertThat(denied.get("source_identity").asText()).isEqualTo(mesh.spiffeId("client"));

            // A DENY naming the client pod's address is named in the record of the call it refuses.
            mesh.delete(POLICY + ".yaml");
            denyFrom(DENY, clientIp + "/32");
            JsonNode byName = awaitDeniedBy(DENY, server, PORT, clientIp, destination);
            assertThat(byName.get("source_identity").asText()).isEqualTo(mesh.spiffeId("client"));
            assertThat(PodClient.http(server, PORT)).isEqualTo("ok hello from server; you are " + host);
        } finally {
            mesh.delete(POLICY + ".yaml");
            mesh.delete(DENY + ".yaml");
        }
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100))
                .until(() -> PodClient.http(server, PORT).startsWith("ok"));
    }

    /** Applies (or replaces) {@link #POLICY}: an ALLOW on pod server for sources from {@code ip} only. */
    private void allowOnlyFrom(String ip) {
        mesh.apply(POLICY + ".yaml", ConfigYaml.policyHead(POLICY, "default") + """
                  selector: {matchLabels: {app: server}}
                  action: ALLOW
                  rules:
                  - from: [{source: {ipBlocks: ["%s/32"]}}]
                """.formatted(ip));
    }

    @Test
    @Order(4)
    void aForwardedClaimFromAPeerThatIsNotAWaypointDoesNotChangeWhatTheServerSees() throws Exception {
        // This JVM plays an agent with a mesh certificate for the client's identity, from the host's
        // address (not node 1's), claiming the client pod's address.
        CertificateAuthority ca = CertificateAuthority.createOrLoad(mesh.stateDir().resolve("ca"), CaSettings.of(
                "cluster.local", NodeAuthorizer.unrestricted()));
        try (Identities ids = Identities.local(ca, "node1"); RawHboneClient raw = new RawHboneClient()) {
            var headers = new DefaultHttp2Headers().method("CONNECT").authority(server + ":" + PORT)
                    .add("forwarded", "for=\"" + clientIp + ":4444\"");
            String answer = raw.exchange(new HboneTls(ids).client(SpiffeId.parse(mesh.spiffeId("client")),
                    List.of(SpiffeId.forServiceAccount("cluster.local", "wisp-system", "wisp-node.node2"))),
                    new InetSocketAddress(mesh.node("node2").address(), 15008), headers,
                    ("GET / HTTP/1.0\r\nHost: server\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            assertThat(answer).startsWith("200 HTTP/1.0 200 OK").endsWith("hello from server; you are " + host + "\n");
        }
    }

    private String upstreamSource() {
        try {
            return OpenConnectionPolicyE2eTest.httpGet(mesh.metricsUrl("node2")).lines().filter(l -> l.startsWith(
                    "wisp_upstream_source")).toList().toString();
        } catch (IOException e) {
            return e.toString();
        }
    }
}
