package dev.wisp.controlplane.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.controlplane.TestMesh;
import dev.wisp.controlplane.config.ConfigDecoder;
import dev.wisp.controlplane.config.ConfigSet;
import dev.wisp.controlplane.config.LoadResult;
import dev.wisp.controlplane.translate.Translation;
import dev.wisp.controlplane.translate.Translator;
import dev.wisp.controlplane.translate.TypeUrls;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * EndpointSlices as the source of a Service's endpoints: with slices, the ready endpoints they
 * list serve the Service (by target pod or address), with the slice's port for each named port;
 * without slices the selector still decides; malformed slices are refused naming the field.
 */
class ServiceEndpointsTest {
    /** A selector-less Service named by the slices below, two ports (one named target). */
    static final String API = """
            apiVersion: v1
            kind: Service
            metadata: {name: api, namespace: shop}
            spec: {clusterIP: 10.96.0.11, ports: [{name: http, port: 80, targetPort: 80}, {name: grpc, port: 9090}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: web-2, namespace: shop, uid: web-2-uid, labels: {app: web}}
            spec: {nodeName: node-a, serviceAccountName: web}
            status: {podIP: 10.1.1.6}
            """;

    static String slice(String name, String service, String endpoints, String ports) {
        return """
                apiVersion: discovery.k8s.io/v1
                kind: EndpointSlice
                metadata: {name: %s, namespace: shop, labels: {kubernetes.io/service-name: %s}}
                addressType: IPv4
                endpoints: %s
                ports: %s
                """.formatted(name, service, endpoints, ports);
    }

    static Translation translate(String extra) {
        LoadResult r = ConfigSet.load(Map.of("mesh.yaml", TestMesh.YAML + "---\n" + API + "---\n" + extra));
        assertThat(r.errors()).isEmpty();
        return Translator.translate(r.model(), null);
    }

    static Map<String, String> services(Translation t, String uid) {
        Workload w = t.resources(TypeUrls.WORKLOAD).get(uid).getWorkload();
        Map<String, String> out = new java.util.TreeMap<>();
        w.getServicesMap().forEach((k, v) -> out.put(k, v.getPortsList().stream().map(p -> p.getServicePort() + ">"
                + p.getTargetPort()).toList().toString()));
        return out;
    }

    @Test
    void slicesDecideTheEndpointsOfTheirServiceReadyOnlyWithTheSlicesPortForEachName() {
        Translation t = translate(slice("api-1", "api", """
                [{addresses: [10.1.1.5], conditions: {ready: true}, targetRef: {kind: Pod, name: web-1}},
                 {addresses: [10.1.1.6], conditions: {ready: false}, targetRef: {kind: Pod, name: web-2}}]""",
                "[{name: http, port: 8080}, {name: grpc, port: 19090}]"));
        // web-1 is a ready endpoint of the selector-less api (targets from the slice) and still, by
        // selector, of web (which has no slices); web-2 is listed but not ready.
        assertThat(services(t, "Kubernetes//Pod/shop/web-1")).isEqualTo(Map.of(
                "shop/api.shop.svc.cluster.local", "[80>8080, 9090>19090]",
                "shop/web.shop.svc.cluster.local", "[80>8080]"));
        assertThat(services(t, "web-2-uid")).containsOnlyKeys("shop/web.shop.svc.cluster.local");
    }

    @Test
    void aServiceWithSlicesIsNotServedByWhatItsSelectorMatchesButTheSlicesDoNotList() {
        Translation t = translate(slice("web-1", "web", "[{addresses: [10.1.1.6]}]", "[]"));
        // The slice lists web-2 by address (no targetRef; absent readiness counts as ready) and
        // not web-1, which the selector matches: the slice decides.
        assertThat(services(t, "web-2-uid")).isEqualTo(Map.of("shop/web.shop.svc.cluster.local",
                "[80>8080]"));
        assertThat(services(t, "Kubernetes//Pod/shop/web-1")).isEmpty();
    }

    @Test
    void aSliceWithoutItsServiceLabelOrWithBadAddressesIsRefusedNamingTheField() {
        ConfigDecoder.Decoded d = ConfigDecoder.decode("s.yaml", """
                apiVersion: discovery.k8s.io/v1
                kind: EndpointSlice
                metadata: {name: orphan, namespace: shop}
                addressType: IPv4
                endpoints: [{addresses: [not-an-ip]}, {conditions: {ready: true}}]
                ports: [{name: http, port: 70000}]
                """);
        assertThat(d.errors()).extracting(e -> e.field()).containsExactlyInAnyOrder(
                "metadata.labels.kubernetes.io/service-name", "endpoints[0].addresses", "endpoints[0].addresses",
                "endpoints[1].addresses", "ports[0].port");
        assertThat(ConfigDecoder.decode("f.yaml", slice("f", "api", "[]", "[]").replace("IPv4", "FQDN")).errors())
                .singleElement().satisfies(e -> assertThat(e.message()).contains("'FQDN' is not one of IPv4, IPv6"));
    }

    /** {@code pod} in shop labelled tier=named at {@code ip}, its container declaring {@code ports}. */
    static String namedPod(String name, String ip, String ports) {
        return """
                apiVersion: v1
                kind: Pod
                metadata: {name: %s, namespace: shop, uid: %s-uid, labels: {tier: named}}
                spec: {nodeName: node-a, serviceAccountName: web, containers: [{name: app, ports: %s}]}
                status: {podIP: %s}
                """.formatted(name, name, ports, ip);
    }

    static String namedService(String target) {
        return """
                apiVersion: v1
                kind: Service
                metadata: {name: named, namespace: shop}
                spec: {clusterIP: 10.96.0.12, selector: {tier: named}, ports: [{name: http, port: 80, targetPort: %s}]}
                """.formatted(target);
    }

    @Test
    void aNamedTargetPortIsEachSelectedPodsContainerPortOfThatName() {
        String docs = String.join("---\n", namedService("web-port"),
                namedPod("n-1", "10.1.1.7", "[{name: web-port, containerPort: 8081}]"),
                namedPod("n-2", "10.1.1.8",
                        "[{name: metrics, containerPort: 9000}, {name: web-port, containerPort: 8082}]"),
                namedPod("n-3", "10.1.1.9", "[{name: metrics, containerPort: 9000}]"));
        Translation t = translate(docs);
        String named = "shop/named.shop.svc.cluster.local";
        assertThat(services(t, "n-1-uid")).isEqualTo(Map.of(named, "[80>8081]"));
        assertThat(services(t, "n-2-uid")).isEqualTo(Map.of(named, "[80>8082]"));
        assertThat(services(t, "n-3-uid")).as("declares no web-port: not an endpoint").doesNotContainKey(named);

        // The waypoint's and proxyless clients' EDS reach each pod at its own port.
        LoadResult r = ConfigSet.load(Map.of("mesh.yaml", TestMesh.YAML + "---\n" + API + "---\n" + docs));
        var assignment = dev.wisp.controlplane.envoy.EnvoyTranslator.translate(r.model()).endpoints().stream()
                .filter(a -> a.getClusterName().contains("named.shop")).findFirst().orElseThrow();
        assertThat(assignment.getEndpoints(0).getLbEndpointsList()).extracting(
                e -> e.getEndpoint().getAddress().getSocketAddress().getAddress() + ":"
                        + e.getEndpoint().getAddress().getSocketAddress().getPortValue())
                .containsExactlyInAnyOrder("10.1.1.7:8081", "10.1.1.8:8082");
    }

    @Test
    void aNamedTargetPortThatNoSelectedPodDeclaresRefusesTheDirectoryNamingTheField() {
        LoadResult r = ConfigSet.load(Map.of("mesh.yaml", TestMesh.YAML + "---\n" + API + "---\n"
                + String.join("---\n", namedService("grpc-port"),
                        namedPod("n-1", "10.1.1.7", "[{name: web-port, containerPort: 8081}]"))));
        assertThat(r.model()).isNull();
        assertThat(r.errors()).singleElement().satisfies(e -> {
            assertThat(e.object().qualifiedName()).isEqualTo("shop/named");
            assertThat(e.field()).isEqualTo("spec.ports[0].targetPort");
            assertThat(e.message()).startsWith("'grpc-port' is a named port that no pod this Service selects declares");
        });
        // A slice giving the port by the service port's name resolves it as well.
        LoadResult sliced = ConfigSet.load(Map.of("mesh.yaml", TestMesh.YAML + "---\n" + API + "---\n"
                + String.join("---\n", namedService("grpc-port"),
                        slice("named-1", "named", "[{addresses: [10.1.1.6]}]", "[{name: http, port: 7000}]"))));
        assertThat(sliced.errors()).isEmpty();
    }
}
