package dev.wisp.controlplane.kubernetes;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.translate.TypeUrls;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResourceBuilder;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane reading a Kubernetes API (fabric8's mock server in CRUD mode, which stores
 * and lists what is created through it and streams watches): objects created through the API
 * reach the model and the workload xDS translation, policies come and go, a refused object gets an
 * Event naming the field, and resyncs that change nothing push nothing.
 */
@EnableKubernetesMockClient(crud = true)
class KubernetesConfigSourceTest {
    // Instance fields: a fresh API server per test.
    KubernetesMockServer server;
    KubernetesClient client;

    @TempDir
    Path dir;

    private ControlPlane cp;
    private KubernetesConfigSource source;

    @AfterEach
    void stop() {
        if (cp != null) {
            cp.close();
        }
    }

    /** {@code dir/mesh} holding the MeshConfig (trust domain {@code k8s.test}) read beside the cluster. */
    static Path meshConfig(Path dir) throws java.io.IOException {
        Path mesh = Files.createDirectories(dir.resolve("mesh"));
        Files.writeString(mesh.resolve("meshconfig.yaml"), """
                apiVersion: wisp.dev/v1alpha1
                kind: MeshConfig
                metadata: {name: mesh}
                spec: {trustDomain: k8s.test}
                """);
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
        pod(prefix + "-shop", "opted-out", prefix + "-node1", "10.1.0.11", Map.of("wisp.dev/mesh", "disabled"));
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
        await().atMost(Duration.ofSeconds(20)).until(() -> cp.translation() != null && !cp.model().pods().isEmpty());
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
            assertThat(cp.model().pods()).extracting(p -> p.ref().qualifiedName()).containsExactly("a-shop/web");
            assertThat(cp.translation().resources(TypeUrls.WORKLOAD)).containsKey(cp.model().pods().getFirst().uid());
            assertThat(cp.translation().resources(TypeUrls.NODE)).containsKey("a-node1");
            assertThat(cp.translation().resources(TypeUrls.SERVICE).keySet()).anyMatch(k -> k.contains("web"));
        });
        assertThat(cp.model().mesh().trustDomain()).isEqualTo("k8s.test");
        Pod web = cp.model().pods().getFirst();
        assertThat(web.nodeName()).isEqualTo("a-node1");
        assertThat(web.serviceAccount()).isEqualTo("web");

        // A pod created later, while the watch runs, follows within the debounce.
        pod("a-shop", "late", "a-node1", "10.1.0.13", Map.of("app", "web"));
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(cp.model().pods())
                .extracting(p -> p.ref().name()).containsExactlyInAnyOrder("web", "late"));
        client.pods().inNamespace("a-shop").withName("late").delete();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(cp.model().pods())
                .extracting(p -> p.ref().name()).containsExactly("web"));
    }

    @Test
    void istioAmbientLabelsEnrollOnlyWhenHonoured() throws Exception {
        client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("i-ambient")
                .addToLabels(Enrollment.ISTIO_MODE, "ambient").endMetadata().build()).create();
        pod("i-ambient", "api", "i-node", "10.2.0.10", Map.of());
        pod("i-ambient", "legacy", "i-node", "10.2.0.11", Map.of(Enrollment.ISTIO_MODE, "none"));
        start(new Enrollment(Enrollment.DEFAULT_LABEL, false), Duration.ZERO);
        await().atMost(Duration.ofSeconds(20)).until(() -> cp.translation() != null);
        assertThat(cp.model().pods()).isEmpty();
        cp.close();

        start(new Enrollment(Enrollment.DEFAULT_LABEL, true), Duration.ZERO);
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(cp.model().pods())
                .extracting(p -> p.ref().qualifiedName()).containsExactly("i-ambient/api"));
    }

    @Test
    void anAuthorizationPolicyCreatedThenDeletedThroughTheApi() throws Exception {
        cluster("b");
        startAndWaitForPods();

        policies("b-shop")
                .resource(policy("b-shop", "deny-x", "DENY")).create();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(cp.model().authorizationPolicies()).extracting(AuthorizationPolicy::ref)
                    .extracting(r -> r.qualifiedName()).containsExactly("b-shop/deny-x");
            assertThat(cp.translation().resources(TypeUrls.AUTHORIZATION)).containsKey("b-shop/deny-x");
        });

        policies("b-shop")
                .withName("deny-x").delete();
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
            assertThat(cp.model().authorizationPolicies()).isEmpty();
            assertThat(cp.translation().resources(TypeUrls.AUTHORIZATION)).isEmpty();
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
            List<Event> events = client.v1().events().inNamespace("c-shop").list().getItems();
            assertThat(events).anySatisfy(e -> {
                assertThat(e.getInvolvedObject().getKind()).isEqualTo("AuthorizationPolicy");
                assertThat(e.getInvolvedObject().getName()).isEqualTo("typo");
                assertThat(e.getType()).isEqualTo("Warning");
                assertThat(e.getReason()).isEqualTo("Refused");
                assertThat(e.getMessage()).startsWith("spec.action: 'DENYY' is not one of");
            });
            assertThat(cp.model().authorizationPolicies()).extracting(p -> p.ref().name()).containsExactly("fine");
        });
        assertThat(cp.configStatus().errors()).isEmpty();
        assertThat(cp.model().pods()).extracting(p -> p.ref().name()).containsExactly("web");
        // Posted once, not once per reading.
        assertThat(client.v1().events().inNamespace("c-shop").list().getItems())
                .filteredOn(e -> e.getInvolvedObject().getName().equals("typo")).hasSize(1);
    }

    @Test
    void resyncsThatChangeNothingPushNothing() throws Exception {
        cluster("d");
        start(new Enrollment(Enrollment.DEFAULT_LABEL, false), Duration.ofMillis(200));
        await().atMost(Duration.ofSeconds(20)).until(() -> cp.translation() != null && !cp.model().pods().isEmpty());
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
