package dev.wisp.controlplane.kubernetes;

import dev.wisp.base.Enrollment;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.wisp.controlplane.config.ConfigDecoder;
import dev.wisp.controlplane.config.ConfigError;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.ServiceEndpoints;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Turns what the informers hold into the documents the directory source would read, and decodes
 * them with the same {@link ConfigDecoder} (pure: objects in, decoded objects and refusals out).
 * Each cluster object is decoded on its own, so one refused object (reported with the field) does
 * not hold back the rest of the cluster, unlike a file of the directory.
 *
 * <p>What is read: enrolled pods that run on a node with an address (not host-network); the
 * Services of namespaces that hold an enrolled pod (not headless, not ExternalName); every Node
 * (its addresses, pod CIDRs and {@code wisp.dev/*} annotations); the IP EndpointSlices of the
 * Services read; every AuthorizationPolicy, PeerAuthentication, RequestAuthentication, Gateway,
 * HTTPRoute and GRPCRoute.
 * Only the fields the model reads are copied, so the server's bookkeeping ({@code managedFields},
 * {@code status} — including the Gateway API status this control plane writes — resource
 * versions) never changes a reading.
 */
final class ClusterObjects {
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    /** What the informers hold at one moment. */
    record Snapshot(List<Namespace> namespaces, List<Pod> pods, List<Service> services, List<Node> nodes,
            List<GenericKubernetesResource> custom, List<EndpointSlice> endpointSlices) {}

    /** An object the control plane refuses, and why (the decoder's error naming the field). */
    record Refusal(HasMetadata object, ConfigError error) {
        String message() {
            return (error.field() == null ? "" : error.field() + ": ") + error.message();
        }
    }

    /**
     * One reading of the cluster.
     *
     * @param documents "kind/namespace/name" → the document decoded for it, sorted: equal maps mean
     *            an equal model, which is how a relist that changed nothing pushes nothing
     */
    record Reading(SortedMap<String, String> documents, List<ConfigDecoder.Decoded> decoded, List<Refusal> refusals) {}

    private ClusterObjects() {}

    static Reading read(Snapshot s, Enrollment enrollment) {
        Map<String, Map<String, String>> namespaceLabels = new HashMap<>();
        for (Namespace ns : s.namespaces()) {
            namespaceLabels.put(ns.getMetadata().getName(), labels(ns.getMetadata()));
        }
        Map<String, HasMetadata> sources = new HashMap<>();
        SortedMap<String, String> documents = new TreeMap<>();
        Set<String> meshNamespaces = new HashSet<>();
        Set<String> meshServices = new HashSet<>();
        for (Pod pod : s.pods()) {
            ObjectMeta m = pod.getMetadata();
            if (!enrollment.enrolled(labels(m), namespaceLabels.getOrDefault(m.getNamespace(), Map.of()))
                    || !running(pod)) {
                continue;
            }
            meshNamespaces.add(m.getNamespace());
            add(documents, sources, pod, pod(pod));
        }
        for (Service svc : s.services()) {
            if (meshNamespaces.contains(svc.getMetadata().getNamespace()) && hasClusterIp(svc)) {
                add(documents, sources, svc, service(svc));
                meshServices.add(svc.getMetadata().getNamespace() + "/" + svc.getMetadata().getName());
            }
        }
        for (EndpointSlice slice : s.endpointSlices()) {
            String service = labels(slice.getMetadata()).get(dev.wisp.controlplane.model.EndpointSlice.SERVICE_LABEL);
            // FQDN slices name no pod address; the mesh serves IP endpoints only.
            if (meshServices.contains(slice.getMetadata().getNamespace() + "/" + service)
                    && !"FQDN".equals(slice.getAddressType())) {
                add(documents, sources, slice, endpointSlice(slice));
            }
        }
        for (Node node : s.nodes()) {
            add(documents, sources, node, node(node));
        }
        for (GenericKubernetesResource r : s.custom()) {
            add(documents, sources, r, custom(r));
        }
        Map<ObjectRef, ConfigDecoder.Decoded> decoded = new LinkedHashMap<>();
        Map<ObjectRef, String> keys = new HashMap<>();
        List<Refusal> refusals = new ArrayList<>();
        for (Map.Entry<String, String> doc : documents.entrySet()) {
            ConfigDecoder.Decoded d = ConfigDecoder.decode("kubernetes:" + doc.getKey(), doc.getValue());
            if (d.errors().isEmpty()) {
                d.objects().forEach(o -> {
                    decoded.put(o.ref(), d);
                    keys.put(o.ref(), doc.getKey());
                });
            } else {
                d.errors().forEach(e -> refusals.add(new Refusal(sources.get(doc.getKey()), e)));
            }
        }
        // Across objects: a named targetPort that no enrolled pod declares refuses its Service.
        List<MeshObject> all = decoded.values().stream().distinct().flatMap(d -> d.objects().stream()).toList();
        for (ServiceEndpoints.UnresolvedTarget u : ServiceEndpoints.unresolved(all)) {
            String key = keys.get(u.service());
            if (decoded.remove(u.service()) != null) {
                refusals.add(new Refusal(sources.get(key), new ConfigError("kubernetes:" + key, 1, u.service(),
                        u.field(), u.message())));
            }
        }
        return new Reading(documents, decoded.values().stream().distinct().toList(), refusals);
    }

    private static void add(SortedMap<String, String> documents, Map<String, HasMetadata> sources, HasMetadata o,
            Map<String, Object> doc) {
        String key = o.getKind() + "/" + (o.getMetadata().getNamespace() == null ? "" : o.getMetadata().getNamespace())
                + "/" + o.getMetadata().getName();
        try {
            documents.put(key, YAML.writeValueAsString(doc));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write " + key + " as YAML: " + e.getMessage(), e);
        }
        sources.put(key, o);
    }

    /** Scheduled, with an address, not finished, and in its own network namespace. */
    private static boolean running(Pod pod) {
        if (pod.getSpec() == null || pod.getStatus() == null || pod.getSpec().getNodeName() == null
                || Boolean.TRUE.equals(pod.getSpec().getHostNetwork())) {
            return false;
        }
        String phase = pod.getStatus().getPhase();
        return pod.getStatus().getPodIP() != null && !"Succeeded".equals(phase) && !"Failed".equals(phase);
    }

    private static boolean hasClusterIp(Service svc) {
        if (svc.getSpec() == null || "ExternalName".equals(svc.getSpec().getType())) {
            return false;
        }
        String ip = svc.getSpec().getClusterIP();
        return ip != null && !ip.isEmpty() && !"None".equals(ip);
    }

    private static Map<String, Object> pod(Pod pod) {
        Map<String, Object> meta = meta(pod.getMetadata(), false);
        meta.put("uid", pod.getMetadata().getUid());
        Map<String, Object> spec = new LinkedHashMap<>();
        spec.put("nodeName", pod.getSpec().getNodeName());
        putIfSet(spec, "serviceAccountName", pod.getSpec().getServiceAccountName());
        // Named container ports only: what a Service's named targetPort resolves to.
        List<Map<String, Object>> named = new ArrayList<>();
        if (pod.getSpec().getContainers() != null) {
            pod.getSpec().getContainers().stream().filter(c -> c.getPorts() != null)
                    .flatMap(c -> c.getPorts().stream())
                    .filter(cp -> cp.getName() != null && cp.getContainerPort() != null)
                    .forEach(cp -> named.add(Map.of("name", cp.getName(), "containerPort", cp.getContainerPort())));
        }
        if (!named.isEmpty()) {
            spec.put("containers", List.of(Map.of("ports", named)));
        }
        Map<String, Object> status = new LinkedHashMap<>();
        putIfSet(status, "phase", pod.getStatus().getPhase());
        putIfSet(status, "podIP", pod.getStatus().getPodIP());
        if (pod.getStatus().getPodIPs() != null && !pod.getStatus().getPodIPs().isEmpty()) {
            status.put("podIPs", pod.getStatus().getPodIPs().stream().map(ip -> Map.of("ip", ip.getIp())).toList());
        }
        return document("v1", "Pod", meta, "spec", spec, status);
    }

    private static Map<String, Object> service(Service svc) {
        Map<String, Object> spec = new LinkedHashMap<>();
        putIfSet(spec, "selector", svc.getSpec().getSelector());
        putIfSet(spec, "clusterIP", svc.getSpec().getClusterIP());
        putIfSet(spec, "clusterIPs", svc.getSpec().getClusterIPs());
        List<Map<String, Object>> ports = new ArrayList<>();
        if (svc.getSpec().getPorts() != null) {
            svc.getSpec().getPorts().forEach(p -> {
                Map<String, Object> port = new LinkedHashMap<>();
                putIfSet(port, "name", p.getName());
                port.put("port", p.getPort());
                if (p.getTargetPort() != null) {
                    port.put("targetPort", p.getTargetPort().getIntVal() != null
                            ? p.getTargetPort().getIntVal()
                            : p.getTargetPort().getStrVal());
                }
                ports.add(port);
            });
        }
        spec.put("ports", ports);
        return document("v1", "Service", meta(svc.getMetadata(), false), "spec", spec, null);
    }

    private static Map<String, Object> node(Node node) {
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("name", node.getMetadata().getName());
        Map<String, String> annotations = new TreeMap<>();
        if (node.getMetadata().getAnnotations() != null) {
            node.getMetadata().getAnnotations().forEach((k, v) -> {
                if (k.startsWith("wisp.dev/")) {
                    annotations.put(k, v);
                }
            });
        }
        putIfSet(meta, "annotations", annotations.isEmpty() ? null : annotations);
        Map<String, Object> spec = new LinkedHashMap<>();
        if (node.getSpec() != null) {
            putIfSet(spec, "podCIDR", node.getSpec().getPodCIDR());
            putIfSet(spec, "podCIDRs", node.getSpec().getPodCIDRs());
        }
        Map<String, Object> status = new LinkedHashMap<>();
        if (node.getStatus() != null && node.getStatus().getAddresses() != null) {
            status.put("addresses", node.getStatus().getAddresses().stream()
                    .map(a -> Map.of("type", a.getType(), "address", a.getAddress())).toList());
        }
        return document("v1", "Node", meta, "spec", spec, status);
    }

    private static Map<String, Object> endpointSlice(EndpointSlice slice) {
        Map<String, Object> doc = document(slice.getApiVersion(), slice.getKind(), meta(slice.getMetadata(), false),
                "addressType", slice.getAddressType(), null);
        List<Map<String, Object>> endpoints = new ArrayList<>();
        if (slice.getEndpoints() != null) {
            slice.getEndpoints().forEach(e -> {
                Map<String, Object> endpoint = new LinkedHashMap<>();
                putIfSet(endpoint, "addresses", e.getAddresses());
                if (e.getConditions() != null && e.getConditions().getReady() != null) {
                    endpoint.put("conditions", Map.of("ready", e.getConditions().getReady()));
                }
                if (e.getTargetRef() != null && e.getTargetRef().getKind() != null) {
                    endpoint.put("targetRef", Map.of("kind", e.getTargetRef().getKind(), "name",
                            String.valueOf(e.getTargetRef().getName())));
                }
                endpoints.add(endpoint);
            });
        }
        doc.put("endpoints", endpoints);
        List<Map<String, Object>> ports = new ArrayList<>();
        if (slice.getPorts() != null) {
            slice.getPorts().forEach(p -> {
                Map<String, Object> port = new LinkedHashMap<>();
                putIfSet(port, "name", p.getName());
                putIfSet(port, "port", p.getPort());
                ports.add(port);
            });
        }
        doc.put("ports", ports);
        return doc;
    }

    /**
     * Istio's and the Gateway API's kinds as the user wrote them: metadata and spec, decoded
     * strictly. The creation time is kept: it orders routes of equal precedence, as the Gateway
     * API says.
     */
    private static Map<String, Object> custom(GenericKubernetesResource r) {
        Map<String, Object> meta = meta(r.getMetadata(), true);
        putIfSet(meta, "creationTimestamp", r.getMetadata().getCreationTimestamp());
        return document(r.getApiVersion(), r.getKind(), meta, "spec", r.getAdditionalProperties().get("spec"), null);
    }

    private static Map<String, Object> meta(ObjectMeta m, boolean annotations) {
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("name", m.getName());
        putIfSet(meta, "namespace", m.getNamespace());
        putIfSet(meta, "labels",
                m.getLabels() == null || m.getLabels().isEmpty() ? null : new TreeMap<>(m.getLabels()));
        if (annotations && m.getAnnotations() != null) {
            // istio.io/dry-run and the like; kubectl's last-applied copy would only repeat the object.
            Map<String, String> kept = new TreeMap<>(m.getAnnotations());
            kept.remove("kubectl.kubernetes.io/last-applied-configuration");
            putIfSet(meta, "annotations", kept.isEmpty() ? null : kept);
        }
        return meta;
    }

    private static Map<String, Object> document(String apiVersion, String kind, Map<String, Object> meta,
            String specKey, Object spec, Map<String, Object> status) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("apiVersion", apiVersion);
        doc.put("kind", kind);
        doc.put("metadata", meta);
        putIfSet(doc, specKey, spec);
        putIfSet(doc, "status", status == null || status.isEmpty() ? null : status);
        return doc;
    }

    private static void putIfSet(Map<String, Object> map, String key, Object value) {
        if (value != null) {
            map.put(key, value);
        }
    }

    private static Map<String, String> labels(ObjectMeta m) {
        return m.getLabels() == null ? Map.of() : m.getLabels();
    }
}
