package dev.wisp.controlplane.kubernetes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.base.Backoff;
import dev.wisp.base.Closing;
import dev.wisp.base.Enrollment;
import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.translate.TypeUrls;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.xds.WorkloadXdsClient;
import dev.wisp.spiffe.TrustBundle;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.grpc.ManagedChannel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * In Kubernetes mode the control plane, never an agent, writes each WireGuard key its registry
 * accepted as annotations on the agent's Node: real agents' discovery clients over gRPC publish
 * their registrations to a control plane reading fabric8's mock API server (CRUD mode). An accepted
 * key and endpoint reach the Node (other annotations kept), a rotation replaces the key there, and
 * claims the registry refuses (another node's key, another node's address as endpoint) reach no
 * Node.
 */
@EnableKubernetesMockClient(crud = true)
class NodeKeyAnnotationsTest {
    static KubernetesMockServer server;
    static KubernetesClient client;
    static final Backoff FAST = new Backoff(Duration.ofMillis(50), Duration.ofMillis(400), 0.2);
    static final String KEY = NodeDef.WIREGUARD_KEY_ANNOTATION;
    static final String ENDPOINT = NodeDef.WIREGUARD_ENDPOINT_ANNOTATION;

    @TempDir
    Path dir;
    private ControlPlane cp;
    /** The agents and their channels, closed newest first before the control plane. */
    private final List<AutoCloseable> opened = new ArrayList<>();

    @AfterEach
    void stop() {
        List<AutoCloseable> all = new ArrayList<>(opened.reversed());
        all.add(cp);
        Closing.inOrder(all.toArray(AutoCloseable[]::new));
        MockStores.empty(client);
    }

    static String key(int b) {
        byte[] k = new byte[32];
        k[31] = (byte) b;
        return Base64.getEncoder().encodeToString(k);
    }

    static WireGuardRegistration registration(String key, String endpoint, String cidr) {
        return WireGuardRegistration.newBuilder().setPublicKey(key).setEndpoint(endpoint).addPodCidrs(cidr).build();
    }

    void node(String name, String address, String cidr, Map<String, String> annotations) {
        client.nodes().resource(new NodeBuilder().withNewMetadata().withName(name).withAnnotations(annotations)
                .endMetadata().withNewSpec().withPodCIDR(cidr).endSpec().withNewStatus().addNewAddress()
                .withType("InternalIP").withAddress(address).endAddress().endStatus().build()).create();
    }

    Map<String, String> annotations(String node) {
        Map<String, String> a = client.nodes().withName(node).get().getMetadata().getAnnotations();
        return a == null ? Map.of() : a;
    }

    /** A real agent's discovery client for {@code node} that publishes what {@code registration} holds. */
    WorkloadXdsClient agent(String node, AtomicReference<WireGuardRegistration> registration) {
        TrustBundle bundle;
        try {
            bundle = TrustBundle.read("k8s.test", cp.caDir().resolve("bundle.pem"));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        ManagedChannel ch = ControlPlaneClient.channel("127.0.0.1", cp.xdsPort(), () -> bundle);
        opened.add(() -> ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
        WorkloadXdsClient c = WorkloadXdsClient.create(ch, node, () -> {
            try {
                return Files.readString(cp.credentials().tokenFile(node)).trim();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }, WorkloadIndex.create(), FAST, () -> Optional.of(registration.get()));
        opened.add(c);
        c.start();
        return c;
    }

    double refused(String reason) {
        String m = cp.registry().scrape().lines().filter(l -> l.startsWith(
                "wisp_wireguard_registrations_refused_total{reason=\"" + reason + "\"}")).findFirst().orElse("x 0");
        return Double.parseDouble(m.substring(m.lastIndexOf(' ') + 1));
    }

    @Test
    void acceptedKeysAreAnnotatedOnTheirNodeRotationsReplaceThemAndRefusedClaimsReachNoNode() throws Exception {
        node("k-node1", "192.0.2.1", "10.1.0.0/24", Map.of("example.com/keep", "yes"));
        node("k-node2", "192.0.2.2", "10.1.1.0/24", Map.of());
        Path mesh = KubernetesConfigSourceTest.meshConfig(dir);
        KubernetesConfigSource source = new KubernetesConfigSource(client, new KubernetesConfigSource.Settings(
                new Enrollment(Enrollment.DEFAULT_LABEL, false), mesh, Duration.ZERO, Duration.ofSeconds(10)));
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        cp = ControlPlane.start(new ControlPlane.Options(mesh, dir.resolve("state"), loopback, loopback), source);
        await().atMost(Duration.ofSeconds(20)).until(() -> cp.translation() != null && cp.translation().resources(
                TypeUrls.NODE).size() == 2);

        // Node 1's agent registers: its key and endpoint land on its Node, beside what was there.
        AtomicReference<WireGuardRegistration> node1 = new AtomicReference<>(registration(key(1), "192.0.2.1:51820",
                "10.1.0.0/24"));
        WorkloadXdsClient agent1 = agent("k-node1", node1);
        await().atMost(Duration.ofSeconds(20)).until(() -> key(1).equals(annotations("k-node1").get(KEY)));
        assertThat(annotations("k-node1")).containsEntry(ENDPOINT, "192.0.2.1:51820").containsEntry(
                "example.com/keep", "yes");

        // Node 2's agent claims node 1's key, then node 1's address as its endpoint: both refused,
        // and neither reaches any Node.
        AtomicReference<WireGuardRegistration> node2 = new AtomicReference<>(registration(key(1), "192.0.2.2:51820",
                "10.1.1.0/24"));
        WorkloadXdsClient agent2 = agent("k-node2", node2);
        await().atMost(Duration.ofSeconds(20)).until(() -> refused("key_of_another_node") >= 1);
        node2.set(registration(key(3), "192.0.2.1:51821", "10.1.1.0/24"));
        agent2.republishWireGuard();
        await().atMost(Duration.ofSeconds(20)).until(() -> refused("endpoint_of_another_node") >= 1);
        // Then a valid claim: annotated. The Node holds it only after the refused ones were handled
        // on the same thread, so checking now also covers them.
        node2.set(registration(key(2), "192.0.2.2:51820", "10.1.1.0/24"));
        agent2.republishWireGuard();
        await().atMost(Duration.ofSeconds(20)).until(() -> key(2).equals(annotations("k-node2").get(KEY)));
        assertThat(annotations("k-node2")).containsEntry(ENDPOINT, "192.0.2.2:51820");
        assertThat(annotations("k-node1")).containsEntry(KEY, key(1)).containsEntry(ENDPOINT, "192.0.2.1:51820");
        assertThat(List.of(annotations("k-node1"), annotations("k-node2"))).allSatisfy(a -> assertThat(a.values())
                .doesNotContain(key(3), "192.0.2.1:51821"));

        // Node 1 rotates its key: the annotation follows, the endpoint stays.
        node1.set(registration(key(4), "192.0.2.1:51820", "10.1.0.0/24"));
        agent1.republishWireGuard();
        await().atMost(Duration.ofSeconds(20)).until(() -> key(4).equals(annotations("k-node1").get(KEY)));
        assertThat(annotations("k-node1")).containsEntry(ENDPOINT, "192.0.2.1:51820").containsEntry(
                "example.com/keep", "yes");
        // Node 1's former key stays its own: node 2 claiming it is still refused, its own Node unchanged.
        double before = refused("key_of_another_node");
        node2.set(registration(key(1), "192.0.2.2:51820", "10.1.1.0/24"));
        agent2.republishWireGuard();
        await().atMost(Duration.ofSeconds(20)).until(() -> refused("key_of_another_node") > before);
        assertThat(annotations("k-node2")).containsEntry(KEY, key(2));
    }
}
