package dev.wisp.controlplane.kubernetes;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.util.ArrayList;
import java.util.List;

/**
 * Empties a fabric8 CRUD mock server's store between the cases of a class that shares one server:
 * every kind the control plane reads or writes (core, EndpointSlices, Events, Istio's and the
 * Gateway API's), each object deleted by name, read through generic resources.
 */
final class MockStores {
    private MockStores() {}

    static List<ResourceDefinitionContext> kinds() {
        List<ResourceDefinitionContext> kinds = new ArrayList<>(List.of(
                kind("", "Pod", "pods", true), kind("", "Service", "services", true),
                kind("", "Event", "events", true), kind("", "Node", "nodes", false),
                kind("", "Namespace", "namespaces", false),
                kind("discovery.k8s.io", "EndpointSlice", "endpointslices", true)));
        kinds.addAll(KubernetesConfigSource.POLICY_KINDS);
        kinds.addAll(KubernetesConfigSource.GATEWAY_KINDS);
        kinds.addAll(KubernetesConfigSource.WISP_KINDS);
        return kinds;
    }

    private static ResourceDefinitionContext kind(String group, String kind, String plural, boolean namespaced) {
        return new ResourceDefinitionContext.Builder().withGroup(group).withVersion("v1").withKind(kind)
                .withPlural(plural).withNamespaced(namespaced).build();
    }

    static List<GenericKubernetesResource> list(KubernetesClient client, ResourceDefinitionContext kind) {
        return kind.isNamespaceScoped()
                ? client.genericKubernetesResources(kind).inAnyNamespace().list().getItems()
                : client.genericKubernetesResources(kind).list().getItems();
    }

    static void empty(KubernetesClient client) {
        for (ResourceDefinitionContext kind : kinds()) {
            for (GenericKubernetesResource o : list(client, kind)) {
                String name = o.getMetadata().getName();
                if (kind.isNamespaceScoped()) {
                    client.genericKubernetesResources(kind).inNamespace(o.getMetadata().getNamespace()).withName(name)
                            .delete();
                } else {
                    client.genericKubernetesResources(kind).withName(name).delete();
                }
            }
        }
    }
}
