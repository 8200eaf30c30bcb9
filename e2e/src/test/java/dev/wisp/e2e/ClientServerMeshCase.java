package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.base.Closing;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.ConfigYaml;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.DatagramChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * A test class over one client/server mesh ({@link PodApps#clientServerMesh}) with pod server's
 * {@link dev.wisp.testing.PodServer} on the given ports: up before the class's first test, with a
 * {@link PodApps.Shell} in pod client, and down (checked for leftovers) after its last. One
 * instance per class, so the fixture is plain fields; a subclass's own {@code @BeforeAll} runs once
 * the mesh is up. A class marked {@link SharedMeshes.OnSharedMesh} (no-argument constructor) runs on
 * that shared mesh instead, and hands it back as it found it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class ClientServerMeshCase {
    private final String cluster;
    private final int base;
    private final ClusterSpec.Stack stack;
    private final int[] serverPorts;
    /** Whether this class runs on one of the {@link SharedMeshes} ({@link SharedMeshes.OnSharedMesh}). */
    private final boolean shared;
    /** The shared mesh's configuration files when this class began. */
    private Set<Path> configBefore;
    LocalMesh mesh;
    PodApps.Shell client;
    /** Pod server's address. */
    String server;

    /** {@code cluster} is the mesh's unique name, {@code base} its address block. */
    ClientServerMeshCase(String cluster, int base, int... serverPorts) {
        this(cluster, base, ClusterSpec.Stack.IPV4, serverPorts);
    }

    /** A mesh whose nodes, pods and Services have the IP families {@code stack}. */
    ClientServerMeshCase(String cluster, int base, ClusterSpec.Stack stack, int... serverPorts) {
        this.cluster = cluster;
        this.base = base;
        this.stack = stack;
        this.serverPorts = serverPorts.clone();
        this.shared = false;
    }

    /**
     * A class on the mesh its {@link SharedMeshes.OnSharedMesh} names: pod server serves
     * {@link SharedMeshes#SERVER_PORTS}; {@link #spec} is not used; after the class, the configuration
     * files it left are removed and its client shell stops.
     */
    ClientServerMeshCase() {
        this.cluster = null;
        this.base = 0;
        this.stack = null;
        this.serverPorts = SharedMeshes.SERVER_PORTS.clone();
        this.shared = true;
        if (!getClass().isAnnotationPresent(SharedMeshes.OnSharedMesh.class)) {
            throw new IllegalStateException(getClass().getName() + " has no @OnSharedMesh");
        }
    }

    /** Brings the mesh up with its logs and configuration in {@code dir}, removed after the class. */
    @BeforeAll
    final void upClientServerMesh(@TempDir Path dir) throws Exception {
        if (!shared) {
            mesh = PodApps.upWithServer(spec(PodApps.clientServerMesh(cluster, base, stack, dir)), serverPorts);
        } else {
            mesh = SharedMeshes.of(getClass()).mesh();
            configBefore = SharedMeshes.config(mesh);
        }
        server = mesh.pod("server").ip();
        client = new PodApps.Shell(mesh, "client");
    }

    /** The mesh a subclass runs (other agent arguments, another wisp command); by default {@code spec} as it is. */
    MeshSpec.Builder spec(MeshSpec.Builder spec) {
        return spec;
    }

    /**
     * Pod client calls pod server's {@code port} (as soon as it answers, 30 s at most) with
     * {@code size} bytes and gets them back; the call was captured and carried over HBONE ({@link
     * PodApps#assertCarriedOverHbone}).
     */
    void assertACallIsCarriedOverHbone(int port, int size) throws Exception {
        client.awaitAnswers(server, port, "server 5", true, Duration.ofSeconds(30));
        assertThat(client.call(server, port, size)).isEqualTo("ok server " + size);
        PodApps.assertCarriedOverHbone(mesh, "client", "server", port);
    }

    /** The address this JVM's connections to the server leave from (the host link's). */
    String hostAddress() throws IOException {
        return hostAddress(server);
    }

    /** The address this JVM's connections to {@code destination} leave from. */
    static String hostAddress(String destination) throws IOException {
        try (DatagramChannel probe = DatagramChannel.open()) {
            probe.connect(new InetSocketAddress(destination, 9));
            return ((InetSocketAddress) probe.getLocalAddress()).getAddress().getHostAddress();
        }
    }

    /** Node {@code node}'s metric {@code name} (its first sample without labels), -1 when absent. */
    double metric(String node, String name) throws IOException {
        return OpenConnectionPolicyE2eTest.httpGet(mesh.metricsUrl(node)).lines().filter(l -> l.startsWith(name + " "))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.indexOf(' ') + 1))).findFirst().orElse(-1);
    }

    /**
     * The latest record in node {@code node}'s {@code /flows} with {@code verdict} ({@code allowed},
     * {@code denied}) from {@code sourceIp} to {@code destination}, or null.
     */
    JsonNode flowRecord(String node, String verdict, String sourceIp, String destination) throws IOException {
        JsonNode connections = new ObjectMapper().readTree(mesh.agentAdmin(node, "/flows")).get("connections");
        return StreamSupport.stream(connections.spliterator(), false)
                .filter(r -> r.get("verdict").asText().equals(verdict)
                        && r.get("source_address").asText().startsWith(sourceIp + ":")
                        && r.get("destination_address").asText().equals(destination))
                .reduce((a, b) -> b).orElse(null);
    }

    /** Applies (or replaces) DENY policy {@code name} on pod server for sources in {@code cidr}. */
    void denyFrom(String name, String cidr) {
        onServer(name, "DENY", "ipBlocks: [\"" + cidr + "\"]");
    }

    /** Applies (or replaces) policy {@code name} on pod server: {@code action} for one {@code source} (flow YAML). */
    void onServer(String name, String action, String source) {
        mesh.apply(name + ".yaml", ConfigYaml.policyHead(name, "default") + """
                  selector: {matchLabels: {app: server}}
                  action: %s
                  rules:
                  - from: [{source: {%s}}]
                """.formatted(action, source));
    }

    /**
     * Pod client calls {@code host:port} until a call fails and node 2's latest {@code denied} record
     * from {@code sourceIp} to {@code destination} names DENY policy {@code name} (a connection open
     * when the policy arrived is closed with the same name and a remark: a later one is waited for);
     * returns that record.
     */
    JsonNode awaitDeniedBy(String name, String host, int port, String sourceIp, String destination) {
        return await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(200)).until(
                () -> client.http(host, port).startsWith("failed")
                        ? flowRecord("node2", "denied", sourceIp,
                                destination)
                        : null,
                r -> r != null && r.get("reason").asText().equals("denied by DENY policy default/" + name));
    }

    @AfterAll
    final void downClientServerMesh() throws Exception {
        if (!shared) {
            PodApps.down(mesh, cluster);
        } else if (mesh != null) {
            Closing.inOrder(client, () -> SharedMeshes.release(mesh, configBefore));
        }
    }
}
