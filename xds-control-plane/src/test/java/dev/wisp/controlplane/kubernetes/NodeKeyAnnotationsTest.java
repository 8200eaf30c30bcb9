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
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.wireguard.PeerPlan;
import dev.wisp.wireguard.Prefix;
import dev.wisp.api.workload.v1.Resource;
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

    static WireGuardRegistration registration(String key, String endpoint, String... cidrs) {
        return WireGuardRegistration.newBuilder().setPublicKey(key).setEndpoint(endpoint).addAllPodCidrs(List.of(
                cidrs)).build();
    }

    /** A Node with InternalIP {@code address} and {@code spec.podCIDR} {@code cidr} (none when null). */
    void node(String name, String address, String cidr, Map<String, String> annotations) {
        client.nodes().resource(new NodeBuilder().withNewMetadata().withName(name).withAnnotations(annotations)
                .endMetadata().withNewSpec().withPodCIDR(cidr).withPodCIDRs(cidr == null ? List.of() : List.of(cidr))
                .endSpec().withNewStatus().addNewAddress().withType("InternalIP").withAddress(address).endAddress()
                .endStatus().build()).create();
    }

    Map<String, String> annotations(String node) {
        Map<String, String> a = client.nodes().withName(node).get().getMetadata().getAnnotations();
        return a == null ? Map.of() : a;
    }

    /** A real agent's discovery client for {@code node} that publishes what {@code registration} holds. */
    WorkloadXdsClient agent(String node, AtomicReference<WireGuardRegistration> registration) {
        return agent(node, registration, WorkloadIndex.create());
    }

    /** The same, filling {@code index} with what the control plane serves it. */
    WorkloadXdsClient agent(String node, AtomicReference<WireGuardRegistration> registration, WorkloadIndex index) {
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
        }, index, FAST, () -> Optional.of(registration.get()));
        opened.add(c);
        c.start();
        return c;
    }

    double refused(String reason) {
        String m = cp.registry().scrape().lines().filter(l -> l.startsWith(
                "wisp_wireguard_registrations_refused_total{reason=\"" + reason + "\"}")).findFirst().orElse("x 0");
        return Double.parseDouble(m.substring(m.lastIndexOf(' ') + 1));
    }

    /** Starts the control plane on the mock API and waits until it serves {@code nodes} Node resources. */
    void startControlPlane(int nodes) throws Exception {
        Path mesh = KubernetesConfigSourceTest.meshConfig(dir);
        KubernetesConfigSource source = new KubernetesConfigSource(client, new KubernetesConfigSource.Settings(
                new Enrollment(Enrollment.DEFAULT_LABEL, false), mesh, Duration.ZERO, Duration.ofSeconds(10)));
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        cp = ControlPlane.start(new ControlPlane.Options(mesh, dir.resolve("state"), loopback, loopback), source);
        await().atMost(Duration.ofSeconds(60)).until(() -> cp.translation() != null && cp.translation().resources(
                TypeUrls.NODE).size() == nodes);
    }

    @Test
    void acceptedKeysAreAnnotatedOnTheirNodeRotationsReplaceThemAndRefusedClaimsReachNoNode() throws Exception {
        node("k-node1", "192.0.2.1", "10.1.0.0/24", Map.of("example.com/keep", "yes"));
        node("k-node2", "192.0.2.2", "10.1.1.0/24", Map.of());
        startControlPlane(2);

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

    /**
     * As the chart runs agents (no {@code --wireguard-pod-cidr}): each node's pod CIDRs in the peer
     * plans are its Node's {@code spec.podCIDRs}, served by the control plane. A node claiming another
     * node's CIDR is refused and logged, and the other node's pods stay routed to that node only; a
     * node whose Node declares no CIDR may claim none (here the first claimant would otherwise have
     * taken it); a CIDR the Node gains later reaches the plans.
     */
    @Test
    void podCidrsInThePeerPlansAreTheNodesOwnAndAClaimOnAnotherNodesIsRefused() throws Exception {
        node("k-a", "192.0.2.1", "10.1.0.0/24", Map.of());
        node("k-b", "192.0.2.2", "10.1.1.0/24", Map.of());
        node("k-c", "192.0.2.3", null, Map.of());
        startControlPlane(3);
        AtomicReference<WireGuardRegistration> a = new AtomicReference<>(registration(key(1), "192.0.2.1:51820"));
        WorkloadXdsClient agentA = agent("k-a", a);
        agent("k-b", new AtomicReference<>(registration(key(2), "192.0.2.2:51820")));
        WorkloadIndex seenByC = WorkloadIndex.create();
        AtomicReference<WireGuardRegistration> c = new AtomicReference<>(registration(key(3), "192.0.2.3:51820"));
        WorkloadXdsClient agentC = agent("k-c", c, seenByC);

        // Node c's plan (strict, no flag): a peer per other node, with that Node's declared CIDR.
        await().atMost(Duration.ofSeconds(60)).until(() -> plan(seenByC).peers().size() == 2);
        assertThat(allowed(plan(seenByC))).containsExactlyInAnyOrder("k-a 10.1.0.0/24 192.0.2.1/32",
                "k-b 10.1.1.0/24 192.0.2.2/32");
        assertThat(plan(seenByC).routed()).extracting(Prefix::toString).containsExactlyInAnyOrder("10.1.0.0/24",
                "10.1.1.0/24");
        // Node a registered no CIDR: what is routed to it is its Node's.
        assertThat(cp.wireguardKeys().get("k-a").podCidrs()).isEmpty();
        await().atMost(Duration.ofSeconds(60)).until(() -> cp.wireguardKeys().containsKey("k-c"));

        // The spoof: node a claims node b's CIDR. Refused, logged, counted; b's pods stay b's.
        ch.qos.logback.classic.Logger cpLog = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(
                ControlPlane.class);
        ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> logged = new ch.qos.logback.core.read.ListAppender<>();
        logged.start();
        cpLog.addAppender(logged);
        try {
            a.set(registration(key(1), "192.0.2.1:51820", "10.1.0.0/24", "10.1.1.0/24"));
            agentA.republishWireGuard();
            await().atMost(Duration.ofSeconds(60)).until(() -> refused("cidr_not_declared") >= 1);
            assertThat(logged.list).extracting(ch.qos.logback.classic.spi.ILoggingEvent::getFormattedMessage)
                    .anyMatch(m -> m.contains("node k-a published the pod CIDR 10.1.1.0/24, which is not within its "
                            + "Node's podCIDRs [10.1.0.0/24]"));
        } finally {
            cpLog.detachAppender(logged);
        }
        // Node c, its Node declaring nothing, claims a range nobody declared: refused too.
        c.set(registration(key(3), "192.0.2.3:51820", "10.1.2.0/24"));
        agentC.republishWireGuard();
        await().atMost(Duration.ofSeconds(60)).until(() -> refused("cidr_not_declared") >= 2);
        // Each node keeps its previous entry; the plans are as before.
        assertThat(cp.wireguardKeys().get("k-a").podCidrs()).isEmpty();
        assertThat(cp.wireguardKeys().get("k-c").podCidrs()).isEmpty();
        assertThat(allowed(plan(seenByC))).containsExactlyInAnyOrder("k-a 10.1.0.0/24 192.0.2.1/32",
                "k-b 10.1.1.0/24 192.0.2.2/32");
        assertThat(plan(seenByC).peers()).filteredOn(p -> p.node().equals("k-a")).singleElement().satisfies(
                p -> assertThat(p.allowedIps()).extracting(Prefix::toString).doesNotContain("10.1.1.0/24"));
        assertThat(translatedCidrs("k-a")).containsExactly("10.1.0.0/24");
        assertThat(translatedCidrs("k-c")).isEmpty();

        // Node c's Node gets its CIDR (the IPAM controller sets spec.podCIDRs once): it reaches the plans.
        client.nodes().withName("k-c").edit(n -> new NodeBuilder(n).editSpec().withPodCIDR("10.1.2.0/24")
                .withPodCIDRs("10.1.2.0/24").endSpec().build());
        await().atMost(Duration.ofSeconds(60)).until(() -> translatedCidrs("k-c").equals(List.of("10.1.2.0/24")));
        await().atMost(Duration.ofSeconds(60)).until(() -> plan(seenByC).local().equals(java.util.Set.of(Prefix.parse(
                "10.1.2.0/24"))));
    }

    /** Node c's strict plan from what its agent holds, with no pod CIDR flag and no cluster CIDR. */
    static PeerPlan plan(WorkloadIndex index) {
        return PeerPlan.of("k-c", index.snapshot().resources().getOrDefault(StateUpdates.NODE, Map.of()).values()
                .stream().map(Resource::getNode).toList(), List.of(), List.of(), true);
    }

    /** Each peer as "node allowed-ips...". */
    static List<String> allowed(PeerPlan plan) {
        return plan.peers().stream().map(p -> p.node() + " " + String.join(" ", p.allowedIps().stream().map(
                Prefix::toString).toList())).toList();
    }

    /** The pod CIDRs of {@code node}'s Node resource as the control plane serves it. */
    List<String> translatedCidrs(String node) {
        return cp.translation().resources(TypeUrls.NODE).values().stream().map(r -> r.getNode()).filter(n -> n
                .getName().equals(node)).findFirst().orElseThrow().getPodCidrsList();
    }
}
