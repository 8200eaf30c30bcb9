package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.LocalMesh;
import dev.wisp.testing.ConfigYaml;
import dev.wisp.testing.Prerequisites;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The whole mesh from {@link LocalMesh}: control plane, two capturing node agents, a client pod on
 * node 1 and a server pod on node 2. Every call is a new TCP connection made by a process inside
 * the client pod, captured by eBPF and carried over HBONE; policies come from YAML files saved in
 * the config directory. The mesh is {@link SharedMeshes.Kind#IPV4}, which {@link PodDnsE2eTest} shares.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@SharedMeshes.OnSharedMesh(SharedMeshes.Kind.IPV4)
@Order(2)
class MeshTrafficE2eTest extends ClientServerMeshCase {
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

    MeshTrafficE2eTest() {
        super();
    }

    @Test
    @Order(1)
    void aCrossNodeCallIsCapturedAndCarriedOverHboneWithBothIdentities() throws Exception {
        assertACallIsCarriedOverHbone(9000, 1234);
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

    /** Pod server's PeerAuthentication: {@code mode} on every port. */
    static String mtls(String mode) {
        return ConfigYaml.peerAuthentication("server-mtls", "default", "server", mode, Map.of());
    }

    /** Waits (10 s at most) until a call from the client pod to the server's {@code port} answers, or fails. */
    void awaitAnswers(int port, boolean answers) {
        client.awaitAnswers(server, port, "server 5", answers, Duration.ofSeconds(10));
    }

    /** Waits until node 2's agent logged a call from the client to {@code port} refused for {@code reason}. */
    void awaitDenied(int port, String reason) {
        var line = PodApps.denied(mesh.pod("client").ip(), mesh.spiffeId("client"), server, port, reason);
        await().atMost(Duration.ofSeconds(10)).until(() -> line.matcher(mesh.log("node2")).find());
    }

    @Test
    @Order(3)
    void strictRefusesPlaintextFromOutsideTheMeshAndPermissiveAcceptsIt() {
        // The test JVM is outside the mesh: it reaches the pod from the host over the underlay.
        assertThat(PodClient.call(server, 9000, 7)).as("PERMISSIVE by default").isEqualTo("ok server 7");
        mesh.apply("mtls.yaml", mtls("STRICT"));
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> PodClient.call(
                server, 9000, 7).startsWith("failed"));
        assertThat(client.answers(server, 9000, "server 5")).as("mTLS from the mesh under STRICT").isTrue();
        await().atMost(Duration.ofSeconds(10)).until(() -> mesh.log("node2").contains(
                "plaintext refused: workload server requires mTLS"));

        mesh.apply("mtls.yaml", mtls("PERMISSIVE"));
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> PodClient.call(
                server, 9000, 7).equals("ok server 7"));
    }
}
