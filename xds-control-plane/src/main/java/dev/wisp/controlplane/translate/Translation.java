package dev.wisp.controlplane.translate;

import dev.wisp.api.workload.v1.Resource;
import dev.wisp.controlplane.model.ObjectRef;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The resources of one model, by type URL then resource name (immutable), with per-object
 * warnings for status, and the per-node view: what each node agent is sent.
 *
 * <p><b>What a node needs</b> (the filtering rule): every Workload, Service and Node, because
 * without egress policy any pod may connect to any address and a destination the agent does not
 * know would leave the node outside a tunnel; but only the Authorizations in scope for the node's
 * own workloads, because authorization is enforced by the destination's agent: mesh-wide
 * (root-namespace) policies, namespace policies of namespaces with a workload on the node, and
 * selector policies that select one of its workloads.
 */
public final class Translation {
    private final Map<String, Map<String, Resource>> byType;
    private final Map<ObjectRef, List<String>> warnings;
    private final Map<String, Set<String>> namespacesByNode;
    private final Map<String, Set<String>> selectedByNode;

    Translation(Map<String, Map<String, Resource>> byType, Map<ObjectRef, List<String>> warnings,
            Map<String, Set<String>> namespacesByNode, Map<String, Set<String>> selectedByNode) {
        this.byType = byType;
        this.warnings = warnings;
        this.namespacesByNode = namespacesByNode;
        this.selectedByNode = selectedByNode;
    }

    /** Every resource of {@code typeUrl}, keyed by name (an unmodifiable, shared map). */
    public Map<String, Resource> resources(String typeUrl) {
        return byType.getOrDefault(typeUrl, Map.of());
    }

    /** Warnings per object (e.g. L7-only policy fields), for the objects' status. */
    public Map<ObjectRef, List<String>> warnings() {
        return warnings;
    }

    /**
     * What {@code node} is sent of {@code typeUrl}. For types sent whole the returned map is the
     * shared one, so that callers can detect "unchanged" by identity.
     */
    public Map<String, Resource> view(String typeUrl, String node) {
        Map<String, Resource> all = resources(typeUrl);
        if (!typeUrl.equals(TypeUrls.AUTHORIZATION)) {
            return all;
        }
        Set<String> namespaces = namespacesByNode.getOrDefault(node, Set.of());
        Set<String> selected = selectedByNode.getOrDefault(node, Set.of());
        Map<String, Resource> out = new LinkedHashMap<>();
        for (var e : all.entrySet()) {
            var a = e.getValue().getAuthorization();
            boolean inScope = switch (a.getScope()) {
                case GLOBAL -> true;
                case NAMESPACE -> namespaces.contains(a.getNamespace());
                case WORKLOAD_SELECTOR -> selected.contains(e.getKey());
                case UNRECOGNIZED -> false;
            };
            if (inScope) {
                out.put(e.getKey(), e.getValue());
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /** Nodes that host at least one workload, sorted. */
    public Set<String> nodesWithWorkloads() {
        return new TreeSet<>(namespacesByNode.keySet());
    }

}
