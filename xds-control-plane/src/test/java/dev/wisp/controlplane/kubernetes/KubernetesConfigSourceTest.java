package dev.wisp.controlplane.kubernetes;

import dev.wisp.base.Enrollment;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.Gateway;
import dev.wisp.controlplane.model.GrpcRoute;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.model.RequestAuthentication;
import dev.wisp.controlplane.translate.TypeUrls;
import dev.wisp.testing.ConfigYaml;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSliceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane reading a Kubernetes API (fabric8's mock server in CRUD mode, which stores
 * and lists what is created through it and streams watches): objects created through the API
 * reach the model and the workload xDS translation, policies and Gateway API routes come and go
 * (the routes in Envoy's RDS too), a refused object gets an Event naming the field, and resyncs
 * that change nothing push nothing.
 */
@EnableKubernetesMockClient(crud = true)
class KubernetesConfigSourceTest {
    // Static fields: one API server for the class. Each case starts from an empty store (checked)
    // and empties it when it ends, so no case sees another's objects.
    static KubernetesMockServer server;
    static KubernetesClient client;

    @TempDir
    Path dir;

    private ControlPlane cp;
    private KubernetesConfigSource source;

    @BeforeEach
    void storeIsEmpty() {
        assertThat(MockStores.kinds().stream().flatMap(k -> MockStores.list(client, k).stream()))
                .as("objects an earlier case left behind").isEmpty();
    }

    @AfterEach
    void stop() {
        if (cp != null) {
            cp.close();
        }
        MockStores.empty(client);
    }

    /** {@code dir/mesh} holding the MeshConfig (trust domain {@code k8s.test}) read beside the cluster. */
    static Path meshConfig(Path dir) throws java.io.IOException {
        Path mesh = Files.createDirectories(dir.resolve("mesh"));
        Files.writeString(mesh.resolve("meshconfig.yaml"), ConfigYaml.meshConfig("k8s.test"));
        return mesh;
    }

    private ControlPlane start(Enrollment enrollment, Duration resync) throws Exception {
        Path mesh = meshConfig(dir);
        source = new KubernetesConfigSource(client,
                new KubernetesConfigSource.Settings(enrollment, mesh, resync, Duration.ofSeconds(10)));
        InetSocketAddress loopback = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        cp = ControlPlane.start(new ControlPlane.Options(mesh, dir.resolve("state"), loopback, loopback), source);
        return cp;
    }

    private void cluster(String prefix) {
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(prefix + "-shop")
                .addToLabels("wisp.dev/mesh", "enabled").endMetadata().build()).create();
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(prefix + "-other")
                .endMetadata().build()).create();
        client.nodes().resource(new NodeBuilder().withNewMetadata().withName(prefix + "-node1").endMetadata()
                .withNewSpec().withPodCIDR("10.1.0.0/24").endSpec()
                .withNewStatus().addNewAddress().withType("InternalIP").withAddress("192.0.2.1").endAddress()
                .endStatus()
                .build()).create();
        pod(prefix + "-shop", "web", prefix + "-node1", "10.1.0.10", Map.of("app", "web"));
        pod(prefix + "-shop", "opted-out", prefix + "-node1", "10.1.0.11", Map.of("wisp.dev/mesh", "none"));
        pod(prefix + "-other", "outside", prefix + "-node1", "10.1.0.12", Map.of());
        client.services().inNamespace(prefix + "-shop").resource(new ServiceBuilder().withNewMetadata().withName("web")
                .endMetadata().withNewSpec().withClusterIP("10.96.0.10").addToSelector("app", "web")
                .addNewPort().withName("http").withPort(80).withNewTargetPort(8080).endPort().endSpec().build())
                .create();
    }

    private void pod(String namespace, String name, String node, String ip, Map<String, String> labels) {
        client.pods().inNamespace(namespace).resource(new PodBuilder().withNewMetadata().withName(name)
                .withUid(namespace + "-" + name).withLabels(labels).endMetadata()
                .withNewSpec().withNodeName(node).withServiceAccountName(name).endSpec()
                .withNewStatus().withPhase("Running").withPodIP(ip).endStatus().build()).create();
    }

    private void startAndWaitForPods() throws Exception {
        start(new Enrollment(Enrollment.DEFAULT_LABEL, false), Duration.ZERO);
        await().atMost(Duration.ofSeconds(20))
                .until(() -> cp.translation() != null && !cp.model().all(Pod.class).isEmpty());
    }

    private io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<GenericKubernetesResource, io.fabric8.kubernetes.api.model.GenericKubernetesResourceList, io.fabric8.kubernetes.client.dsl.Resource<GenericKubernetesResource>> policies(
            String namespace) {
        return client.genericKubernetesResources(KubernetesConfigSource.POLICY_KINDS.getFirst()).inNamespace(namespace);
    }

    private static GenericKubernetesResource policy(String namespace, String name, String action) {
        return new GenericKubernetesResourceBuilder().withApiVersion("security.istio.io/v1")
                .withKind("AuthorizationPolicy").withNewMetadata().withName(name).withNamespace(namespace)
                .endMetadata()
                .addToAdditionalProperties("spec", Map.of("action", action, "rules",
                        List.of(Map.of("from", List.of(Map.of("source", Map.of("namespaces", List.of("x"))))))))
                .build();
    }

    @Test
    void enrolledPodsServicesAndNodesCreatedThroughTheApiReachTheModelAndTheTranslation() throws Exception {
        cluster("a");
        start(new Enrollment(Enrollment.DEFAULT_LABEL, false), Duration.ZERO);

        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(cp.model().all(Pod.class)).extracting(p -> p.ref().qualifiedName())
                    .containsExactly("a-shop/web");
            assertThat(cp.translation().resources(TypeUrls.WORKLOAD))
                    .containsKey(cp.model().all(Pod.class).getFirst().uid());
            assertThat(cp.translation().resources(TypeUrls.NODE)).containsKey("a-node1");
            assertThat(cp.translation().resources(TypeUrls.SERVICE).keySet()).anyMatch(k -> k.contains("web"));
        });
        assertThat(cp.model().mesh().trustDomain()).isEqualTo("k8s.test");
        Pod web = cp.model().all(Pod.class).getFirst();
        assertThat(web.nodeName()).isEqualTo("a-node1");
        assertThat(web.serviceAccount()).isEqualTo("web");

        // A pod created later, while the watch runs, follows within the debounce.
        pod("a-shop", "late", "a-node1", "10.1.0.13", Map.of("app", "web"));
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(cp.model().all(Pod.class))
                .extracting(p -> p.ref().name()).containsExactlyInAnyOrder("web", "late"));
        client.pods().inNamespace("a-shop").withName("late").delete();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(cp.model().all(Pod.class))
                .extracting(p -> p.ref().name()).containsExactly("web"));
    }

    @Test
    void endpointSlicesFromTheApiDecideWhichPodsServeTheirServiceAndTheirReadiness() throws Exception {
        cluster("e");
        pod("e-shop", "web-2", "e-node1", "10.1.0.14", Map.of("app", "web"));
        startAndWaitForPods();
        // Without slices the selector decides: both pods serve web.
        String web = "e-shop/web.e-shop.svc.cluster.local";
        await().atMost(Duration.ofSeconds(20)).until(() -> served(web).size() == 2);

        client.discovery().v1().endpointSlices().inNamespace("e-shop").resource(new EndpointSliceBuilder()
                .withNewMetadata().withName("web-abc").addToLabels("kubernetes.io/service-name", "web").endMetadata()
                .withAddressType("IPv4")
                .addNewEndpoint().withAddresses("10.1.0.10").withNewConditions().withReady(true).endConditions()
                .withNewTargetRef().withKind("Pod").withName("web").endTargetRef().endEndpoint()
                .addNewEndpoint().withAddresses("10.1.0.14").withNewConditions().withReady(false).endConditions()
                .withNewTargetRef().withKind("Pod").withName("web-2").endTargetRef().endEndpoint()
                .addNewPort().withName("http").withPort(18080).endPort().build()).create();
        // The slice lists web ready (with its port) and web-2 not ready: only web serves.
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(served(web))
                .isEqualTo(Map.of("web", List.of(18080))));

        client.discovery().v1().endpointSlices().inNamespace("e-shop").withName("web-abc").delete();
        await().atMost(Duration.ofSeconds(20)).until(() -> served(web).size() == 2);
    }

    @Test
    void aNamedTargetPortResolvesFromThePodsContainerPortsAndAnUndeclaredOneGetsAnEvent() throws Exception {
        cluster("n");
        client.pods().inNamespace("n-shop").resource(new PodBuilder().withNewMetadata().withName("named-1")
                .withUid("n-named-1").addToLabels("tier", "named").endMetadata()
                .withNewSpec().withNodeName("n-node1").addNewContainer().withName("app").withImage("app")
                .addNewPort().withName("web-port").withContainerPort(8081).endPort().endContainer().endSpec()
                .withNewStatus().withPhase("Running").withPodIP("10.1.0.40").endStatus().build()).create();
        for (String target : List.of("web-port", "nope")) {
            client.services().inNamespace("n-shop").resource(new ServiceBuilder().withNewMetadata()
                    .withName("to-" + target).endMetadata().withNewSpec().withClusterIP("10.96.0." + target.length())
                    .addToSelector("tier", "named").addNewPort().withName("http").withPort(80)
                    .withNewTargetPort(target).endPort().endSpec().build()).create();
        }
        startAndWaitForPods();

        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(served("n-shop/to-web-port.n-shop.svc.cluster.local"))
                    .isEqualTo(Map.of("named-1", List.of(8081)));
            assertRefused("n-shop", "Service", "to-nope",
                    "spec.ports[0].targetPort: 'nope' is a named port that no pod this Service selects declares");
        });
        // Only the Service is refused: the rest of the cluster applies.
        assertThat(cp.model().all(dev.wisp.controlplane.model.ServiceDef.class)).extracting(s -> s.ref().name())
                .containsExactlyInAnyOrder("web", "to-web-port");
    }

    /** pod name → target ports of the workloads that serve {@code service} in the current translation. */
    private Map<String, List<Integer>> served(String service) {
        Map<String, List<Integer>> out = new java.util.TreeMap<>();
        cp.translation().resources(TypeUrls.WORKLOAD).values().forEach(r -> {
            var ports = r.getWorkload().getServicesMap().get(service);
            if (ports != null) {
                out.put(r.getWorkload().getName(), ports.getPortsList().stream().map(p -> p.getTargetPort()).toList());
            }
        });
        return out;
    }

    @Test
    void istioAmbientLabelsEnrollOnlyWhenHonoured() throws Exception {
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("i-ambient")
                .addToLabels(Enrollment.ISTIO_MODE, "ambient").endMetadata().build()).create();
        pod("i-ambient", "api", "i-node", "10.2.0.10", Map.of());
        pod("i-ambient", "legacy", "i-node", "10.2.0.11", Map.of(Enrollment.ISTIO_MODE, "none"));
        start(new Enrollment(Enrollment.DEFAULT_LABEL, false), Duration.ZERO);
        await().atMost(Duration.ofSeconds(20)).until(() -> cp.translation() != null);
        assertThat(cp.model().all(Pod.class)).isEmpty();
        cp.close();

        start(new Enrollment(Enrollment.DEFAULT_LABEL, true), Duration.ZERO);
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(cp.model().all(Pod.class))
                .extracting(p -> p.ref().qualifiedName()).containsExactly("i-ambient/api"));
    }

    @Test
    void anAuthorizationPolicyCreatedThenDeletedThroughTheApi() throws Exception {
        cluster("b");
        startAndWaitForPods();

        policies("b-shop")
                .resource(policy("b-shop", "deny-x", "DENY")).create();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(cp.model().all(AuthorizationPolicy.class)).extracting(AuthorizationPolicy::ref)
                    .extracting(r -> r.qualifiedName()).containsExactly("b-shop/deny-x");
            assertThat(cp.translation().resources(TypeUrls.AUTHORIZATION)).containsKey("b-shop/deny-x");
        });

        policies("b-shop")
                .withName("deny-x").delete();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(cp.model().all(AuthorizationPolicy.class)).isEmpty();
            assertThat(cp.translation().resources(TypeUrls.AUTHORIZATION)).isEmpty();
        });
    }

    @Test
    void aRequestAuthenticationFromTheApiReachesTheModelAndARefusedOneGetsAnEvent() throws Exception {
        cluster("h");
        startAndWaitForPods();
        var kind = KubernetesConfigSource.POLICY_KINDS.stream()
                .filter(k -> k.getKind().equals("RequestAuthentication")).findFirst().orElseThrow();
        for (String uri : List.of("https://issuer.example/jwks.json", "ftp://issuer.example/jwks.json")) {
            String name = uri.startsWith("https") ? "jwt" : "bad-jwt";
            client.genericKubernetesResources(kind).inNamespace("h-shop").resource(
                    new GenericKubernetesResourceBuilder().withApiVersion("security.istio.io/v1")
                            .withKind("RequestAuthentication").withNewMetadata().withName(name)
                            .withNamespace("h-shop").endMetadata()
                            .addToAdditionalProperties("spec", Map.of("jwtRules",
                                    List.of(Map.of("issuer", "https://issuer.example", "jwksUri", uri))))
                            .build())
                    .create();
        }
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(cp.model().all(RequestAuthentication.class)).singleElement().satisfies(r -> {
                assertThat(r.ref().qualifiedName()).isEqualTo("h-shop/jwt");
                assertThat(r.jwtRules()).extracting(j -> j.jwksUri().toString())
                        .containsExactly("https://issuer.example/jwks.json");
            });
            assertRefused("h-shop", "RequestAuthentication", "bad-jwt",
                    "spec.jwtRules[0].jwksUri: 'ftp://issuer.example/jwks.json' is not an http(s) URL");
        });
    }

    /** The conditions of {@code kind/name}'s status at {@code path} ({@code conditions}, {@code parents[0].conditions} …), by type. */
    private Map<String, Map<String, Object>> conditions(String kind, String namespace, String name,
            java.util.function.Function<Map<String, Object>, Object> at) {
        GenericKubernetesResource o = gatewayApi(kind, namespace).withName(name).get();
        Map<String, Map<String, Object>> out = new java.util.TreeMap<>();
        GatewayApiStatus.list(at.apply(GatewayApiStatus.map(o.getAdditionalProperties().get("status"))))
                .forEach(c -> out.put((String) GatewayApiStatus.map(c).get("type"), GatewayApiStatus.map(c)));
        return out;
    }

    private static Object parent0(Map<String, Object> status) {
        return GatewayApiStatus.map(GatewayApiStatus.list(status.get("parents")).stream().findFirst().orElse(null))
                .get("conditions");
    }

    /** {@code type=status/reason} of each condition. */
    private static List<String> summary(Map<String, Map<String, Object>> conditions) {
        return conditions.values().stream().map(c -> c.get("type") + "=" + c.get("status") + "/" + c.get("reason"))
                .toList();
    }

    @Test
    void gatewayApiStatusConditionsAreWrittenOnlyWhenTheyChange() throws Exception {
        cluster("s");
        startAndWaitForPods();
        gatewayApi("HTTPRoute", "s-shop").resource(route("HTTPRoute", "s-shop", "api", "Service", "web")).create();
        gatewayApi("HTTPRoute", "s-shop").resource(route("HTTPRoute", "s-shop", "broken", "Service", "missing"))
                .create();
        gatewayApi("Gateway", "s-shop").resource(gateway("s-shop", "waypoint", "wisp-waypoint", MESH)).create();
        gatewayApi("Gateway", "s-shop").resource(gateway("s-shop", "edge", "other", HTTP)).create();

        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(summary(conditions("HTTPRoute", "s-shop", "api", KubernetesConfigSourceTest::parent0)))
                    .containsExactly("Accepted=True/Accepted", "ResolvedRefs=True/ResolvedRefs");
            var broken = conditions("HTTPRoute", "s-shop", "broken", KubernetesConfigSourceTest::parent0);
            assertThat(summary(broken)).containsExactly("Accepted=True/Accepted", "ResolvedRefs=False/BackendNotFound");
            assertThat(broken.get("ResolvedRefs").get("message")).isEqualTo("spec.rules[0].backendRefs[0]: "
                    + "Service s-shop/missing is not in the mesh (absent, or no enrolled pod in its namespace)");
            assertThat(summary(conditions("Gateway", "s-shop", "waypoint", st -> st.get("conditions"))))
                    .containsExactly("Accepted=True/Accepted", "Programmed=True/Programmed");
        });
        GenericKubernetesResource api = gatewayApi("HTTPRoute", "s-shop").withName("api").get();
        Map<String, Object> parent = GatewayApiStatus.map(GatewayApiStatus.list(
                GatewayApiStatus.map(api.getAdditionalProperties().get("status")).get("parents")).getFirst());
        assertThat(parent.get("controllerName")).isEqualTo("wisp.dev/control-plane");
        assertThat(parent.get("parentRef"))
                .isEqualTo(Map.of("group", "", "kind", "Service", "name", "web", "port", 80));
        assertThat(GatewayApiStatus.list(parent.get("conditions"))).allSatisfy(c -> {
            assertThat(GatewayApiStatus.map(c).get("lastTransitionTime")).isNotNull();
            assertThat(((Number) GatewayApiStatus.map(c).get("observedGeneration")).longValue())
                    .isEqualTo(api.getMetadata().getGeneration());
        });
        assertThat(conditions("Gateway", "s-shop", "waypoint",
                st -> GatewayApiStatus.map(GatewayApiStatus.list(st.get("listeners")).getFirst()).get("conditions")))
                .containsOnlyKeys("Accepted", "ResolvedRefs", "Programmed");
        assertThat(gatewayApi("Gateway", "s-shop").withName("edge").get().getAdditionalProperties())
                .as("a Gateway of another class is another controller's").doesNotContainKey("status");
        gatewayApi("HTTPRoute", "s-shop").resource(route("HTTPRoute", "s-shop", "ingress", "Gateway", "web")).create();

        // Readings that change no status write none: the statuses keep their resource versions.
        String version = api.getMetadata().getResourceVersion();
        long generation = cp.configStatus().generation();
        pod("s-shop", "extra", "s-node1", "10.1.0.30", Map.of("app", "other"));
        await().atMost(Duration.ofSeconds(20)).until(() -> cp.configStatus().generation() > generation);
        assertThat(gatewayApi("HTTPRoute", "s-shop").withName("api").get().getMetadata().getResourceVersion())
                .isEqualTo(version);
        assertThat(gatewayApi("HTTPRoute", "s-shop").withName("ingress").get().getAdditionalProperties())
                .as("a route whose only parent is a Gateway is another controller's").doesNotContainKey("status");

        // The missing backend appears: the broken route's ResolvedRefs turns True.
        client.services().inNamespace("s-shop").resource(new ServiceBuilder().withNewMetadata().withName("missing")
                .endMetadata().withNewSpec().withClusterIP("10.96.0.11").addToSelector("app", "other")
                .addNewPort().withName("http").withPort(80).withNewTargetPort(8080).endPort().endSpec().build())
                .create();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(summary(
                conditions("HTTPRoute", "s-shop", "broken", KubernetesConfigSourceTest::parent0)))
                .containsExactly("Accepted=True/Accepted", "ResolvedRefs=True/ResolvedRefs"));
    }

    /** {@code namespace} holds a Warning Event "Refused" on {@code kind/name} whose message starts so. */
    private void assertRefused(String namespace, String kind, String name, String messageStart) {
        assertThat(client.v1().events().inNamespace(namespace).list().getItems()).anySatisfy(e -> {
            assertThat(e.getInvolvedObject().getKind()).isEqualTo(kind);
            assertThat(e.getInvolvedObject().getName()).isEqualTo(name);
            assertThat(e.getType()).isEqualTo("Warning");
            assertThat(e.getReason()).isEqualTo("Refused");
            assertThat(e.getMessage()).startsWith(messageStart);
        });
    }

    @Test
    void aRefusedPolicyGetsAWarningEventNamingTheFieldAndTheRestStaysLive() throws Exception {
        cluster("c");
        startAndWaitForPods();

        policies("c-shop")
                .resource(policy("c-shop", "typo", "DENYY")).create();
        policies("c-shop")
                .resource(policy("c-shop", "fine", "ALLOW")).create();

        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertRefused("c-shop", "AuthorizationPolicy", "typo", "spec.action: 'DENYY' is not one of");
            assertThat(cp.model().all(AuthorizationPolicy.class)).extracting(p -> p.ref().name())
                    .containsExactly("fine");
        });
        assertThat(cp.configStatus().errors()).isEmpty();
        assertThat(cp.model().all(Pod.class)).extracting(p -> p.ref().name()).containsExactly("web");
        // Posted once, not once per reading.
        assertThat(client.v1().events().inNamespace("c-shop").list().getItems())
                .filteredOn(e -> e.getInvolvedObject().getName().equals("typo")).hasSize(1);
    }

    private io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<GenericKubernetesResource, io.fabric8.kubernetes.api.model.GenericKubernetesResourceList, io.fabric8.kubernetes.client.dsl.Resource<GenericKubernetesResource>> gatewayApi(
            String kind, String namespace) {
        return client.genericKubernetesResources(KubernetesConfigSource.GATEWAY_KINDS.stream()
                .filter(k -> k.getKind().equals(kind)).findFirst().orElseThrow()).inNamespace(namespace);
    }

    /** A GAMMA route on {@code web:80} sending {@code /api} to {@code backend:80}, with {@code parentKind} as parent. */
    static GenericKubernetesResource route(String kind, String namespace, String name, String parentKind,
            String backend) {
        Map<String, Object> match = kind.equals("HTTPRoute")
                ? Map.of("path", Map.of("type", "PathPrefix", "value", "/api"))
                : Map.of("method", Map.of("service", "shop.Api"));
        return new GenericKubernetesResourceBuilder().withApiVersion("gateway.networking.k8s.io/v1").withKind(kind)
                .withNewMetadata().withName(name).withNamespace(namespace).endMetadata()
                .addToAdditionalProperties("spec", Map.of(
                        "parentRefs",
                        List.of(Map.of("group", parentKind.equals("Service") ? "" : "gateway.networking.k8s.io",
                                "kind", parentKind, "name", "web", "port", 80)),
                        "rules", List.of(Map.of("matches", List.of(match),
                                "backendRefs", List.of(Map.of("name", backend, "port", 80))))))
                .build();
    }

    /** The path prefixes of the routes Envoy's RDS serves for {@code web} in {@code namespace}, port 80. */
    private List<String> rdsPrefixes(String namespace) {
        var snapshot = cp.envoy().snapshot();
        if (snapshot == null) {
            return List.of();
        }
        return snapshot.routes().resources().entrySet().stream()
                .filter(e -> e.getKey().startsWith("web." + namespace + ".") && e.getKey().endsWith(":80"))
                .flatMap(e -> e.getValue().getVirtualHostsList().stream())
                .flatMap(v -> v.getRoutesList().stream())
                .map(r -> r.getMatch().getPrefix())
                .toList();
    }

    private static final Map<String, Object> HTTP = Map.of("name", "http", "port", 80, "protocol", "HTTP");
    private static final Map<String, Object> MESH = Map.of("name", "mesh", "port", 15008, "protocol", "HBONE");

    /** A Gateway of {@code className} with one listener. */
    static GenericKubernetesResource gateway(String namespace, String name, String className,
            Map<String, Object> listener) {
        return new GenericKubernetesResourceBuilder().withApiVersion("gateway.networking.k8s.io/v1")
                .withKind("Gateway").withNewMetadata().withName(name).withNamespace(namespace).endMetadata()
                .addToAdditionalProperties("spec", Map.of("gatewayClassName", className, "listeners",
                        List.of(listener)))
                .build();
    }

    @Test
    void gatewayApiRoutesCreatedThenDeletedThroughTheApiReachTheModelAndEnvoyRds() throws Exception {
        cluster("f");
        startAndWaitForPods();

        gatewayApi("HTTPRoute", "f-shop").resource(route("HTTPRoute", "f-shop", "api", "Service", "web")).create();
        gatewayApi("GRPCRoute", "f-shop").resource(route("GRPCRoute", "f-shop", "rpc", "Service", "web")).create();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(cp.model().all(HttpRoute.class)).singleElement().satisfies(r -> {
                assertThat(r.ref().qualifiedName()).isEqualTo("f-shop/api");
                assertThat(r.created()).as("the API server's creationTimestamp orders equal routes").isNotNull();
                assertThat(r.parents()).extracting(p -> p.name() + ":" + p.port()).containsExactly("web:80");
            });
            assertThat(cp.model().all(GrpcRoute.class)).extracting(r -> r.ref().qualifiedName())
                    .containsExactly("f-shop/rpc");
            assertThat(rdsPrefixes("f-shop")).contains("/api/");
        });

        gatewayApi("HTTPRoute", "f-shop").withName("api").delete();
        gatewayApi("GRPCRoute", "f-shop").withName("rpc").delete();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(cp.model().all(HttpRoute.class)).isEmpty();
            assertThat(cp.model().all(GrpcRoute.class)).isEmpty();
            assertThat(rdsPrefixes("f-shop")).isNotEmpty().doesNotContain("/api/");
        });
    }

    private io.fabric8.kubernetes.client.dsl.NonNamespaceOperation<GenericKubernetesResource, io.fabric8.kubernetes.api.model.GenericKubernetesResourceList, io.fabric8.kubernetes.client.dsl.Resource<GenericKubernetesResource>> wisp(
            String kind, String namespace) {
        return client.genericKubernetesResources(KubernetesConfigSource.WISP_KINDS.stream()
                .filter(k -> k.getKind().equals(kind)).findFirst().orElseThrow()).inNamespace(namespace);
    }

    private static GenericKubernetesResource wispObject(String kind, String namespace, String name,
            Map<String, Object> spec) {
        return new GenericKubernetesResourceBuilder().withApiVersion("wisp.dev/v1alpha1").withKind(kind)
                .withNewMetadata().withName(name).withNamespace(namespace).endMetadata()
                .addToAdditionalProperties("spec", spec).build();
    }

    @Test
    void anHttpFaultAndALocalRateLimitFromTheApiReachEnvoyRdsAndARefusedOneGetsAnEvent() throws Exception {
        cluster("w");
        startAndWaitForPods();
        wisp("HTTPFault", "w-shop").resource(wispObject("HTTPFault", "w-shop", "flaky",
                Map.of("abort", Map.of("grpcStatus", 14, "percentage", 50)))).create();
        wisp("LocalRateLimit", "w-shop").resource(wispObject("LocalRateLimit", "w-shop", "ten",
                Map.of("tokens", 10, "fillInterval", "1s"))).create();
        wisp("LocalRateLimit", "w-shop").resource(wispObject("LocalRateLimit", "w-shop", "typo",
                Map.of("tokens", 10, "fillIntervall", "1s"))).create();
        GenericKubernetesResource r = route("HTTPRoute", "w-shop", "api", "Service", "web");
        @SuppressWarnings("unchecked")
        Map<String, Object> spec = new java.util.LinkedHashMap<>((Map<String, Object>) r.getAdditionalProperties()
                .get("spec"));
        @SuppressWarnings("unchecked")
        Map<String, Object> rule = new java.util.LinkedHashMap<>(((List<Map<String, Object>>) spec.get("rules"))
                .getFirst());
        rule.put("filters", List.of(
                Map.of("type", "ExtensionRef", "extensionRef",
                        Map.of("group", "wisp.dev", "kind", "HTTPFault", "name", "flaky")),
                Map.of("type", "ExtensionRef", "extensionRef",
                        Map.of("group", "wisp.dev", "kind", "LocalRateLimit", "name", "ten"))));
        spec.put("rules", List.of(rule));
        r.getAdditionalProperties().put("spec", spec);
        gatewayApi("HTTPRoute", "w-shop").resource(r).create();

        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            var snapshot = cp.envoy().snapshot();
            assertThat(snapshot).isNotNull();
            var api = snapshot.routes().resources().entrySet().stream()
                    .filter(e -> e.getKey().startsWith("web.w-shop.") && e.getKey().endsWith(":80"))
                    .flatMap(e -> e.getValue().getVirtualHostsList().stream())
                    .flatMap(v -> v.getRoutesList().stream()).filter(x -> x.getMatch().getPrefix().equals("/api/"))
                    .toList();
            assertThat(api).singleElement().satisfies(route -> {
                assertThat(route.getTypedPerFilterConfigMap()).containsKeys("envoy.filters.http.fault",
                        "envoy.filters.http.local_ratelimit");
                assertThat(route.getTypedPerFilterConfigMap().get("envoy.filters.http.fault").unpack(
                        io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault.class).getAbort()
                        .getGrpcStatus()).isEqualTo(14);
                assertThat(route.getTypedPerFilterConfigMap().get("envoy.filters.http.local_ratelimit").unpack(
                        io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.class)
                        .getTokenBucket().getMaxTokens()).isEqualTo(10);
            });
            assertRefused("w-shop", "LocalRateLimit", "typo", "spec.fillIntervall: unknown field");
        });
    }

    @Test
    void refusedGatewayApiObjectsGetAWarningEventNamingTheField() throws Exception {
        cluster("g");
        startAndWaitForPods();

        gatewayApi("HTTPRoute", "g-shop").resource(route("HTTPRoute", "g-shop", "ingress", "Gateway", "web")).create();
        // A waypoint class without the HBONE listener is refused; another class is kept as it is.
        gatewayApi("Gateway", "g-shop").resource(gateway("g-shop", "waypoint", "istio-waypoint", HTTP)).create();
        gatewayApi("Gateway", "g-shop").resource(gateway("g-shop", "edge", "other", HTTP)).create();

        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertRefused("g-shop", "HTTPRoute", "ingress",
                    "spec.parentRefs[0].kind: 'gateway.networking.k8s.io/Gateway' is not a mesh parent");
            assertRefused("g-shop", "Gateway", "waypoint", "spec.listeners: a waypoint needs the listener");
            // The valid Gateway beside them applies; the refused ones do not.
            assertThat(cp.model().all(Gateway.class)).extracting(g -> g.ref().name()).containsExactly("edge");
        });
        assertThat(cp.model().all(HttpRoute.class)).isEmpty();
    }

    @Test
    void resyncsThatChangeNothingPushNothing() throws Exception {
        cluster("d");
        start(new Enrollment(Enrollment.DEFAULT_LABEL, false), Duration.ofMillis(200));
        await().atMost(Duration.ofSeconds(20))
                .until(() -> cp.translation() != null && !cp.model().all(Pod.class).isEmpty());
        long generation = cp.configStatus().generation();
        long readings = source.readings();

        // Every 200 ms the informers deliver every object again; the source reads them...
        await().atMost(Duration.ofSeconds(20)).until(() -> source.readings() >= readings + 5);
        // ...and reports nothing, so no new generation is pushed to agents.
        assertThat(cp.configStatus().generation()).isEqualTo(generation);

        pod("d-shop", "new", "d-node1", "10.1.0.20", Map.of("app", "web"));
        await().atMost(Duration.ofSeconds(20)).until(() -> cp.configStatus().generation() == generation + 1);
    }
}
