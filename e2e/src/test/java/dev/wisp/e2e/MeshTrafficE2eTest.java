package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.local.LocalMesh;
import dev.wisp.testing.Prerequisites;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole mesh from {@link LocalMesh}: control plane, two capturing node agents, a client pod on
 * node 1 and a server pod on node 2. Every call is a new TCP connection made by a process inside
 * the client pod, captured by eBPF and carried over HBONE; policies come from YAML files saved in
 * the config directory.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class MeshTrafficE2eTest {
    static final String CLUSTER = "mtraf";
    /** The same DENY policy the control-plane test uses: the client's principal, any port. */
    static final String DENY = ControlPlaneMeshE2eTest.DENY_CLIENT;
    static final String ALLOW_9000 = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-9000, namespace: default}
            spec:
              selector: {matchLabels: {app: server}}
              action: ALLOW
              rules:
              - from: [{source: {principals: [cluster.local/ns/default/sa/client]}}]
                to: [{operation: {ports: ["9000"]}}]
            """;
    static final String MTLS = """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: server-mtls, namespace: default}
            spec:
              selector: {matchLabels: {app: server}}
              mtls: {mode: %s}
            """;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static PodApps.Shell client;
    static String server;

    @BeforeAll
    static void up() throws Exception {
        mesh = PodApps.upWithServer(PodApps.clientServerMesh(CLUSTER, 130, dir), 9000, 9001);
        server = mesh.pod("server").ip();
        client = new PodApps.Shell(mesh, "client");
    }

    @AfterAll
    static void down() throws Exception {
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    @Order(1)
    void aCrossNodeCallIsCapturedAndCarriedOverHboneWithBothIdentities() throws Exception {
        client.awaitAnswers(server, 9000, "server 5", true, Duration.ofSeconds(30));
        assertThat(client.call(server, 9000, 1234)).isEqualTo("ok server 1234");
        // The server's agent saw the client's SPIFFE ID in its client certificate.
        await().atMost(Duration.ofSeconds(10)).until(() -> mesh.log("node2").lines().anyMatch(l -> l.contains(
                "direction=inbound") && l.contains("src.identity=\"" + mesh.spiffeId("client") + "\"")
                && l.contains(
                        "dst.addr=" + server + ":9000")));
        // The client's agent checked the server's identity and tunnelled to HBONE port 15008.
        await().atMost(Duration.ofSeconds(10)).until(() -> mesh.log("node1").lines().anyMatch(l -> l.contains(
                "direction=outbound") && l.contains("dst.addr=" + server + ":9000")
                && l.contains("dst.identity=\""
                        + mesh.spiffeId("server") + "\"")
                && l.matches(".* dst\\.hbone_addr=[0-9.]+:15008 .*")));
        // eBPF redirected the pod's connect: the agent's flow ring has it with its original destination.
        JsonNode flows = new ObjectMapper().readTree(mesh.agentAdmin("node1", "/flows")).get("flows");
        assertThat(flows).anySatisfy(f -> {
            assertThat(f.get("redirected").asBoolean()).isTrue();
            assertThat(f.get("original_destination").asText()).isEqualTo(server + ":9000");
            assertThat(f.get("source").asText()).startsWith(mesh.pod("client").ip() + ":");
        });
    }

    @Test
    @Order(2)
    void denyAndAllowPoliciesFromYamlTakeEffectAndAreLifted() {
        assertThat(client.answers(server, 9000, "server 5")).isTrue();
        mesh.apply("deny.yaml", DENY);
        // The policy and the workload's reference to it are separate pushes: wait for enforcement.
        awaitAnswers(9000, false);
        assertThat(client.answers(server, 9001, "server 5")).as("DENY covers every port").isFalse();
        awaitDenied(9000, "denied by DENY policy default/deny-client");
        awaitDenied(9001, "denied by DENY policy default/deny-client");
        mesh.delete("deny.yaml");
        awaitAnswers(9000, true);

        mesh.apply("allow.yaml", ALLOW_9000);
        awaitAnswers(9001, false);
        awaitDenied(9001, "denied: no ALLOW policy matched");
        assertThat(client.answers(server, 9000, "server 5")).as("ALLOW names port 9000").isTrue();
        mesh.delete("allow.yaml");
        awaitAnswers(9001, true);
    }

    /** Waits (10 s at most) until a call from the client pod to the server's {@code port} answers, or fails. */
    static void awaitAnswers(int port, boolean answers) {
        client.awaitAnswers(server, port, "server 5", answers, Duration.ofSeconds(10));
    }

    /** Waits until node 2's agent logged a call from the client to {@code port} refused for {@code reason}. */
    static void awaitDenied(int port, String reason) {
        var line = PodApps.denied(mesh.pod("client").ip(), mesh.spiffeId("client"), server, port, reason);
        await().atMost(Duration.ofSeconds(10)).until(() -> line.matcher(mesh.log("node2")).find());
    }

    @Test
    @Order(3)
    void strictRefusesPlaintextFromOutsideTheMeshAndPermissiveAcceptsIt() {
        // The test JVM is outside the mesh: it reaches the pod from the host over the underlay.
        assertThat(PodClient.call(server, 9000, 7)).as("PERMISSIVE by default").isEqualTo("ok server 7");
        mesh.apply("mtls.yaml", MTLS.formatted("STRICT"));
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> PodClient.call(
                server, 9000, 7).startsWith("failed"));
        assertThat(client.answers(server, 9000, "server 5")).as("mTLS from the mesh under STRICT").isTrue();
        await().atMost(Duration.ofSeconds(10)).until(() -> mesh.log("node2").contains(
                "plaintext refused: workload server requires mTLS"));

        mesh.apply("mtls.yaml", MTLS.formatted("PERMISSIVE"));
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> PodClient.call(
                server, 9000, 7).equals("ok server 7"));
    }
}
