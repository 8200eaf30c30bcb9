package dev.wisp.controlplane.xds;

import dev.wisp.controlplane.TestMesh;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.HboneProtocol;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.WireGuardRegistration;
import java.util.Base64;
import java.util.Optional;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.translate.TypeUrls;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.base.Backoff;
import dev.wisp.node.xds.WorkloadXdsClient;
import dev.wisp.node.xds.XdsMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.grpc.ManagedChannel;
import dev.wisp.node.controlplane.ControlPlaneClient;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import dev.wisp.spiffe.TrustBundle;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane and the agent's real {@link WorkloadXdsClient} over real gRPC on loopback:
 * policy changes, refused files, NACKs, restarts, authentication, and the WireGuard key registry (an
 * agent's entry reaches the other nodes in their {@code Node} resource; a node claiming another node's
 * key or pod CIDR is refused, counted, and the rightful entry stays).
 */
class WorkloadDiscoveryEndToEndTest {
    static final String MESH = TestMesh.YAML;

    static final Backoff FAST = new Backoff(Duration.ofMillis(50), Duration.ofMillis(400), 0.2);

    @TempDir
    Path config;
    @TempDir
    Path state;
    ControlPlane cp;
    final List<ManagedChannel> channels = new ArrayList<>();
    final List<WorkloadXdsClient> clients = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        Files.writeString(config.resolve("mesh.yaml"), MESH);
        cp = ControlPlane.start(options(0));
    }

    ControlPlane.Options options(int xdsPort) {
        return new ControlPlane.Options(config, state, new InetSocketAddress("127.0.0.1", xdsPort),
                new InetSocketAddress("127.0.0.1", 0));
    }

    @AfterEach
    void stop() throws InterruptedException {
        clients.forEach(WorkloadXdsClient::close);
        for (ManagedChannel c : channels) {
            c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        if (cp != null) {
            cp.close();
        }
    }

    static TrustBundle readBundle(ControlPlane cp) {
        try {
            return TrustBundle.read("cluster.local", cp.caDir().resolve("bundle.pem"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    WorkloadXdsClient connect(String node, Supplier<String> credential, MemoryState s, int port) {
        // The file an agent is given with --ca-bundle.
        TrustBundle bundle = readBundle(cp);
        ManagedChannel ch = ControlPlaneClient.channel("127.0.0.1", port, () -> bundle);
        channels.add(ch);
        WorkloadXdsClient c = WorkloadXdsClient.create(ch, node, credential, s, FAST);
        clients.add(c);
        c.start();
        return c;
    }

    Supplier<String> token(String node) {
        return () -> {
            try {
                return Files.readString(cp.credentials().tokenFile(node)).trim();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        };
    }

    /** What the model says {@code node} should hold, as name → version per type. */
    Map<String, Map<String, String>> expected(String node) {
        Map<String, Map<String, String>> out = new TreeMap<>();
        for (String type : TypeUrls.ALL) {
            Map<String, String> m = new TreeMap<>();
            cp.translation().view(type, node).forEach((n, r) -> m.put(n, r.getVersion()));
            out.put(type, m);
        }
        return out;
    }

    static Map<String, Map<String, String>> held(MemoryState s) {
        Map<String, Map<String, String>> out = new TreeMap<>();
        for (String type : TypeUrls.ALL) {
            out.put(type, s.versions(type));
        }
        return out;
    }

    MemoryState synced(String node) {
        MemoryState s = new MemoryState();
        connect(node, token(node), s, cp.xdsPort());
        await().atMost(Duration.ofSeconds(10)).until(() -> held(s).equals(expected(node)));
        return s;
    }

    static String policy(String name, String action) {
        return """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata:
                  name: %s
                  namespace: shop
                spec:
                  action: %s
                  rules:
                  - from: [{source: {namespaces: [front]}}]
                """.formatted(name, action);
    }

    @Test
    void typeUrlsAreTheAgentsOwn() {
        assertThat(TypeUrls.ALL).isEqualTo(StateUpdates.TYPES);
    }

    @Test
    void newPolicyReachesTheAgentWithinOneSecondOfTheSave() throws IOException {
        MemoryState s = synced("node-a");
        assertThat(s.resources(TypeUrls.AUTHORIZATION)).isEmpty();
        long t0 = System.nanoTime();
        Files.writeString(config.resolve("policies.yaml"), policy("front-only", "ALLOW"));
        await().atMost(Duration.ofSeconds(1))
                .until(() -> s.resources(TypeUrls.AUTHORIZATION).containsKey("shop/front-only"));
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(1));
        assertThat(s.resources(TypeUrls.AUTHORIZATION).get("shop/front-only").getAuthorization().getAction())
                .isEqualTo(Action.ALLOW);
        // Per-node filtering: node-b has no workload in "shop", so it is not sent the policy.
        MemoryState b = synced("node-b");
        assertThat(b.resources(TypeUrls.AUTHORIZATION)).isEmpty();
        assertThat(s.duplicates()).isZero();
    }

    @Test
    void invalidFileIsRefusedAgentsKeepThePreviousPolicyAndTheFixApplies() throws IOException {
        MemoryState s = synced("node-a");
        Path file = config.resolve("policies.yaml");
        Files.writeString(file, policy("p", "ALLOW"));
        await().atMost(Duration.ofSeconds(2)).until(() -> s.resources(TypeUrls.AUTHORIZATION).containsKey("shop/p"));
        Resource before = s.resources(TypeUrls.AUTHORIZATION).get("shop/p");
        long generation = cp.configStatus().generation();

        Files.writeString(file, policy("p", "DENYY"));
        await().atMost(Duration.ofSeconds(2)).until(() -> !cp.configStatus().errors().isEmpty());
        assertThat(cp.configStatus().errors()).extracting(Object::toString).containsExactly(
                "policies.yaml:7 AuthorizationPolicy shop/p: spec.action: 'DENYY' is not one of ALLOW, DENY, AUDIT, CUSTOM");
        assertThat(cp.configStatus().generation()).isEqualTo(generation);
        assertThat(s.resources(TypeUrls.AUTHORIZATION).get("shop/p")).isEqualTo(before);
        assertThat(cp.registry().scrape()).contains("wisp_config_errors_total 1.0").contains("wisp_config_valid 0.0");

        Files.writeString(file, policy("p", "DENY"));
        await().atMost(Duration.ofSeconds(2)).until(() -> s.resources(TypeUrls.AUTHORIZATION).get("shop/p")
                .getAuthorization().getAction() == Action.DENY);
        assertThat(cp.configStatus().errors()).isEmpty();
    }

    @Test
    void agentKeepsItsStateWhileTheControlPlaneIsAwayAndConvergesWithoutDuplicatesOrLosses() throws Exception {
        Files.writeString(config.resolve("policies.yaml"), policy("a", "ALLOW") + "---\n" + policy("b", "DENY"));
        await().atMost(Duration.ofSeconds(2))
                .until(() -> cp.translation().resources(TypeUrls.AUTHORIZATION).size() == 2);
        MemoryState s = synced("node-a");
        WorkloadXdsClient client = clients.getFirst();
        Map<String, Map<String, String>> before = held(s);
        int port = cp.xdsPort();

        cp.close();
        cp = null;
        await().atMost(Duration.ofSeconds(5)).until(() -> !client.status().connected());
        assertThat(held(s)).isEqualTo(before);

        // While it is away: one policy removed, one pod added on node-a.
        Files.writeString(config.resolve("policies.yaml"), policy("a", "ALLOW"));
        Files.writeString(config.resolve("more.yaml"), """
                apiVersion: v1
                kind: Pod
                metadata: {name: web-2, namespace: shop, labels: {app: web}}
                spec: {nodeName: node-a}
                status: {podIP: 10.1.1.6}
                """);
        int upsertsBefore = s.upserts();
        int removalsBefore = s.removals();
        cp = ControlPlane.start(options(port));
        await().atMost(Duration.ofSeconds(10))
                .until(() -> client.status().connected() && held(s).equals(expected("node-a")));
        assertThat(s.upserts() - upsertsBefore).as("only the new pod is sent again").isEqualTo(1);
        assertThat(s.removals() - removalsBefore).as("only the removed policy").isEqualTo(1);
        assertThat(s.duplicates()).isZero();
        assertThat(held(s).get(TypeUrls.WORKLOAD)).containsKeys("Kubernetes//Pod/shop/web-2",
                "Kubernetes//Pod/shop/web-1", "Kubernetes//Pod/data/db-1");
    }

    @Test
    void refusedResponseIsNackedAndSurfacedInStatusAndMetrics() throws IOException {
        MemoryState s = synced("node-a");
        s.refuse = r -> r.getName().equals("shop/poison");
        Files.writeString(config.resolve("policies.yaml"), policy("poison", "ALLOW"));
        await().atMost(Duration.ofSeconds(2)).until(() -> !cp.discovery().nacks().isEmpty());
        WorkloadDiscoveryServer.Nack n = cp.discovery().nacks().getFirst();
        assertThat(n.node()).isEqualTo("node-a");
        assertThat(n.typeUrl()).isEqualTo(TypeUrls.AUTHORIZATION);
        assertThat(n.message()).isEqualTo("refusing shop/poison: test says so");
        assertThat(s.resources(TypeUrls.AUTHORIZATION)).isEmpty();
        assertThat(clients.getFirst().status().nacks()).isEqualTo(1);
        assertThat(cp.registry().scrape()).contains("wisp_xds_nacks_total{type=\"Authorization\"} 1.0");

        // The agent accepts the next version: the NACK is cleared.
        s.refuse = r -> false;
        Files.writeString(config.resolve("policies.yaml"), policy("poison", "DENY"));
        await().atMost(Duration.ofSeconds(2))
                .until(() -> s.resources(TypeUrls.AUTHORIZATION).containsKey("shop/poison"));
        await().atMost(Duration.ofSeconds(2)).until(() -> cp.discovery().nacks().isEmpty());
    }

    /** A value of the agent's Prometheus text, e.g. {@code wisp_xds_connected}. */
    static double metric(PrometheusMeterRegistry r, String series) {
        return r.scrape().lines().filter(l -> l.startsWith(series + " ")).map(l -> Double.parseDouble(l.substring(
                series.length() + 1))).findFirst().orElseThrow(() -> new AssertionError("no " + series));
    }

    @Test
    void theAgentsXdsSeriesShowTheStreamTheGenerationAppliedAndRejections() throws Exception {
        MemoryState s = synced("node-a");
        WorkloadXdsClient client = clients.getFirst();
        PrometheusMeterRegistry agent = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        XdsMetrics.bind(client, agent);
        long generation = cp.configStatus().generation();
        await().atMost(Duration.ofSeconds(2)).until(() -> metric(agent, "wisp_xds_config_generation") == generation);
        assertThat(metric(agent, "wisp_xds_connected")).isEqualTo(1);
        assertThat(metric(cp.registry(), "wisp_config_generation")).isEqualTo(generation);
        assertThat(metric(agent, "wisp_xds_updates_total{result=\"applied\"}"))
                .isEqualTo((double) client.status().acks())
                .isGreaterThanOrEqualTo(TypeUrls.ALL.size());
        assertThat(metric(agent, "wisp_xds_updates_total{result=\"rejected\"}")).isZero();
        assertThat(metric(agent, "wisp_xds_last_update_age_seconds")).isBetween(0.0, 10.0);

        // A response the agent refuses: counted rejected, the generation applied stays where it was.
        s.refuse = r -> r.getName().equals("shop/poison");
        Files.writeString(config.resolve("policies.yaml"), policy("poison", "ALLOW"));
        await().atMost(Duration.ofSeconds(5)).until(() -> metric(agent,
                "wisp_xds_updates_total{result=\"rejected\"}") == 1);
        assertThat(cp.configStatus().generation()).isGreaterThan(generation);
        assertThat(metric(agent, "wisp_xds_config_generation")).isEqualTo(generation);
        // Accepted at the next generation: the agent's number catches up with the control plane's.
        s.refuse = r -> false;
        Files.writeString(config.resolve("policies.yaml"), policy("poison", "DENY"));
        await().atMost(Duration.ofSeconds(5)).until(() -> metric(agent, "wisp_xds_config_generation") == cp
                .configStatus().generation());
        assertThat(metric(cp.registry(), "wisp_config_generation")).isEqualTo(cp.configStatus().generation());

        cp.close();
        cp = null;
        await().atMost(Duration.ofSeconds(5)).until(() -> metric(agent, "wisp_xds_connected") == 0);
    }

    @Test
    void acksAreCountedPerTypeAtTheLatestGenerationWithTheLastOnesArrival() throws IOException {
        synced("node-a");
        synced("node-b");
        long initial = cp.configStatus().generation();
        await().atMost(Duration.ofSeconds(2)).until(() -> ack(TypeUrls.WORKLOAD) != null
                && ack(TypeUrls.WORKLOAD).agents() == 2);
        assertThat(ack(TypeUrls.WORKLOAD).generation()).isEqualTo(initial);

        java.time.Instant saved = java.time.Instant.now();
        Files.writeString(config.resolve("policies.yaml"), policy("late", "DENY"));
        await().atMost(Duration.ofSeconds(5)).until(() -> ack(TypeUrls.AUTHORIZATION) != null
                && ack(TypeUrls.AUTHORIZATION).generation() > initial);
        WorkloadDiscoveryServer.AckCount a = ack(TypeUrls.AUTHORIZATION);
        assertThat(a.generation()).isEqualTo(cp.configStatus().generation());
        assertThat(a.agents()).as("node-a runs a pod of namespace shop; node-b does not get the policy").isEqualTo(1);
        assertThat(a.lastAt()).isAfter(saved).isBeforeOrEqualTo(java.time.Instant.now());
    }

    WorkloadDiscoveryServer.AckCount ack(String type) {
        return cp.discovery().acks().stream().filter(a -> a.typeUrl().equals(type)).findFirst().orElse(null);
    }

    @Test
    void metricsCountAgentsPushesAndLatency() {
        synced("node-a");
        await().atMost(Duration.ofSeconds(2))
                .until(() -> cp.registry().scrape().contains("wisp_xds_connected_agents 1.0"));
        String scrape = cp.registry().scrape();
        assertThat(scrape).contains("wisp_xds_pushes_total{type=\"Workload\"} 1.0")
                .contains("wisp_xds_push_latency_seconds_count 4")
                .contains("wisp_config_valid 1.0");
    }

    @Test
    void aSubscriptionToAnotherNodesAuthorizationIsCountedAndNotSent() throws Exception {
        // Namespace data has pods on node-b only: its policy is in node-b's view, not node-a's.
        Files.writeString(config.resolve("policy.yaml"), policy("db-only", "DENY").replace("namespace: shop",
                "namespace: data"));
        await().atMost(Duration.ofSeconds(10)).until(() -> !cp.translation().resources(TypeUrls.AUTHORIZATION)
                .isEmpty());
        String name = cp.translation().resources(TypeUrls.AUTHORIZATION).keySet().iterator().next();
        assertThat(cp.translation().view(TypeUrls.AUTHORIZATION, "node-a")).doesNotContainKey(name);
        TrustBundle bundle = readBundle(cp);
        ManagedChannel ch = ControlPlaneClient.channel("127.0.0.1", cp.xdsPort(), () -> bundle);
        channels.add(ch);
        io.grpc.Metadata m = new io.grpc.Metadata();
        m.put(io.grpc.Metadata.Key.of("authorization", io.grpc.Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token(
                "node-a").get());
        var responses = new java.util.concurrent.LinkedBlockingQueue<dev.wisp.api.workload.v1.DeltaWorkloadResponse>();
        var requests = dev.wisp.api.workload.v1.WorkloadDiscoveryGrpc.newStub(io.grpc.ClientInterceptors.intercept(ch,
                io.grpc.stub.MetadataUtils.newAttachHeadersInterceptor(m))).deltaWorkloads(
                        new io.grpc.stub.StreamObserver<>() {
                            @Override
                            public void onNext(dev.wisp.api.workload.v1.DeltaWorkloadResponse r) {
                                responses.add(r);
                            }

                            @Override
                            public void onError(Throwable t) {}

                            @Override
                            public void onCompleted() {}
                        });
        requests.onNext(dev.wisp.api.workload.v1.DeltaWorkloadRequest.newBuilder().setNodeName("node-a").setTypeUrl(
                TypeUrls.AUTHORIZATION).addResourceNamesSubscribe(name).build());
        var first = responses.poll(60, TimeUnit.SECONDS);
        assertThat(first).isNotNull();
        assertThat(first.getResourcesList()).isEmpty();
        assertThat(metric(cp.registry(), "wisp_controlplane_refused_total{reason=\"xds_other_node\"}")).isEqualTo(1);
        requests.onCompleted();
    }

    @Test
    void aRemovedNodesStreamIsClosedAndItsReplayedTokenRefused() throws IOException {
        String old = token("node-b").get();
        WorkloadXdsClient c = connect("node-b", () -> old, new MemoryState(), cp.xdsPort());
        await().atMost(Duration.ofSeconds(10)).until(() -> c.status().connected());
        Files.writeString(config.resolve("mesh.yaml"), dev.wisp.testing.ConfigYaml.documents(
                dev.wisp.testing.ConfigYaml.node("node-a", "192.168.0.1"), dev.wisp.testing.ConfigYaml.pod("web-1",
                        "shop", "app: web, version: v2", "node-a", "web", "10.1.1.5")));
        // The open stream is closed, and the agent's reconnects with the same token are refused.
        await().atMost(Duration.ofSeconds(10)).until(() -> c.status().lastError().filter(e -> e.startsWith(
                "UNAUTHENTICATED: node node-b's credential was revoked when Node node-b left")).isPresent());
        assertThat(c.status().connected()).isFalse();
        assertThat(cp.credentials().tokenFile("node-b")).doesNotExist();
        assertThat(metric(cp.registry(), "wisp_controlplane_refused_total{reason=\"node_removed\"}"))
                .as("the closed stream and at least one replay").isGreaterThanOrEqualTo(2);
        // Back in the configuration, the node gets a new token; the old one stays refused.
        Files.writeString(config.resolve("mesh.yaml"), MESH);
        await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(cp.credentials().tokenFile("node-b")));
        assertThat(token("node-b").get()).isNotEqualTo(old);
        WorkloadXdsClient fresh = connect("node-b", token("node-b"), new MemoryState(), cp.xdsPort());
        await().atMost(Duration.ofSeconds(10)).until(() -> fresh.status().connected());
        assertThat(c.status().connected()).isFalse();
    }

    @Test
    void agentsMustPresentTheCredentialOfTheirNode() throws IOException {
        MemoryState wrong = new MemoryState();
        WorkloadXdsClient c1 = connect("node-a", () -> "not-a-token", wrong, cp.xdsPort());
        MemoryState other = new MemoryState();
        WorkloadXdsClient c2 = connect("node-b", token("node-a"), other, cp.xdsPort());
        await().atMost(Duration.ofSeconds(3))
                .until(() -> c1.status().lastError().isPresent() && c2.status().lastError().isPresent());
        assertThat(c1.status().lastError().orElseThrow()).startsWith("UNAUTHENTICATED: node credential not recognised");
        assertThat(c2.status().lastError().orElseThrow())
                .startsWith("PERMISSION_DENIED: node_name 'node-b' does not match the credential's node 'node-a'");
        assertThat(held(wrong).values()).allMatch(Map::isEmpty);
        assertThat(held(other).values()).allMatch(Map::isEmpty);
        // Counted (node-b's client retries: each attempt counts), under the credential's node.
        assertThat(cp.registry().scrape()).containsPattern(
                "wisp_controlplane_refused_total\\{reason=\"xds_other_node\"\\} [1-9][0-9]*\\.0");
        Path tokenFile = cp.credentials().tokenFile("node-a");
        assertThat(Files.getPosixFilePermissions(tokenFile)).containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ,
                PosixFilePermission.OWNER_WRITE);
    }

    // WireGuard key registry: agents publish their entry at each connect, the others receive it in Node.

    static final String KEY_A = key(0x0a);
    static final String KEY_B = key(0x0b);

    static String key(int b) {
        byte[] k = new byte[32];
        k[31] = (byte) b;
        return Base64.getEncoder().encodeToString(k);
    }

    static WireGuardRegistration registration(String key, String endpoint, String... cidrs) {
        return WireGuardRegistration.newBuilder().setPublicKey(key).setEndpoint(endpoint).addAllPodCidrs(List.of(
                cidrs)).build();
    }

    MemoryState agent(String node, WireGuardRegistration r) {
        MemoryState s = new MemoryState();
        TrustBundle bundle = readBundle(cp);
        ManagedChannel ch = ControlPlaneClient.channel("127.0.0.1", cp.xdsPort(), () -> bundle);
        channels.add(ch);
        WorkloadXdsClient c = WorkloadXdsClient.create(ch, node, token(node), s, FAST, () -> Optional.of(r));
        clients.add(c);
        c.start();
        return s;
    }

    static Node node(MemoryState s, String name) {
        var r = s.resources(TypeUrls.NODE).get(name);
        return r == null ? Node.getDefaultInstance() : r.getNode();
    }

    @Test
    void eachNodeReceivesTheOtherNodesKeyEndpointAndCidrs() {
        MemoryState a = agent("node-a", registration(KEY_A, "192.168.0.1:51820", "10.1.1.0/24"));
        MemoryState b = agent("node-b", registration(KEY_B, "192.168.0.2:51820", "10.1.2.0/24"));
        await().atMost(Duration.ofSeconds(10)).until(() -> node(b, "node-a").getWireguardPublicKey().equals(KEY_A)
                && node(a, "node-b").getWireguardPublicKey().equals(KEY_B));
        assertThat(node(b, "node-a").getWireguardEndpoint()).isEqualTo("192.168.0.1:51820");
        assertThat(node(b, "node-a").getPodCidrsList()).containsExactly("10.1.1.0/24");
        assertThat(node(a, "node-b").getPodCidrsList()).containsExactly("10.1.2.0/24");
        assertThat(node(a, "node-b").getHboneOverWireguard()).isFalse();
        assertThat(node(a, "node-b").getWireguardPeerIdleSeconds()).as("MeshConfig's default").isEqualTo(180);
        assertThat(cp.registry().scrape()).contains("wisp_wireguard_registered_nodes 2.0");
    }

    @Test
    void meshConfigsHboneProtocolReachesEveryNodeResource() throws IOException {
        MemoryState a = synced("node-a");
        assertThat(node(a, "node-a").getHboneProtocol()).as("MeshConfig's default").isEqualTo(HboneProtocol.HBONE_H2);
        Files.writeString(config.resolve("hbone.yaml"), """
                apiVersion: wisp.dev/v1alpha1
                kind: MeshConfig
                metadata: {name: mesh}
                spec: {hbone: {protocol: auto}}
                """);
        await().atMost(Duration.ofSeconds(5))
                .until(() -> node(a, "node-a").getHboneProtocol() == HboneProtocol.HBONE_AUTO
                        && node(a, "node-b").getHboneProtocol() == HboneProtocol.HBONE_AUTO);
    }

    @Test
    void aNodeClaimingAnotherNodesKeyOrCidrIsRefusedAndTheRightfulEntryStays() {
        MemoryState a = agent("node-a", registration(KEY_A, "192.168.0.1:51820", "10.1.1.0/24"));
        await().atMost(Duration.ofSeconds(10)).until(() -> node(a, "node-a").getWireguardPublicKey().equals(KEY_A));
        // node-b holds a valid credential of its own, and claims node-a's CIDR with a key of its own.
        MemoryState b = agent("node-b", registration(KEY_B, "192.168.0.2:51820", "10.1.1.0/25"));
        // ... and, on another stream, node-a's key.
        agent("node-b", registration(KEY_A, "192.168.0.2:51820", "10.1.2.0/24"));
        await().atMost(Duration.ofSeconds(10)).until(() -> cp.registry().scrape().contains(
                "wisp_wireguard_registrations_refused_total{reason=\"cidr_overlaps_another_node\"} 1.0")
                && cp
                        .registry().scrape().contains(
                                "wisp_wireguard_registrations_refused_total{reason=\"key_of_another_node\"} 1.0"));
        assertThat(cp.wireguardKeys()).containsOnlyKeys("node-a");
        assertThat(cp.wireguardKeys().get("node-a").publicKey()).isEqualTo(KEY_A);
        // Reasons nothing was refused for are series at zero (the WireGuard dashboard's "none refused").
        assertThat(cp.registry().scrape()).contains(
                "wisp_wireguard_registrations_refused_total{reason=\"malformed\"} 0.0");
        await().atMost(Duration.ofSeconds(10)).until(() -> node(b, "node-a").getWireguardPublicKey().equals(KEY_A));
        assertThat(node(b, "node-a").getPodCidrsList()).containsExactly("10.1.1.0/24");
        assertThat(node(b, "node-b").getWireguardPublicKey()).isEmpty();
        assertThat(node(b, "node-b").getPodCidrsList()).isEmpty();
    }
}
