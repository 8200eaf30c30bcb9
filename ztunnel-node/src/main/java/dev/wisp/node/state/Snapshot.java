package dev.wisp.node.state;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Scope;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.Workload;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One immutable, consistent view of the agent's state. The primary maps hold the resources by name
 * (with their versions); the derived maps are computed once per snapshot so that every lookup on
 * the data path is a hash lookup.
 *
 * @param resources type URL → name → resource, as received
 * @param workloadsByAddress each workload address → its workload
 * @param servicesByAddress each service VIP → its service
 * @param endpoints service key ({@code namespace/hostname}) → workloads that back it, in uid order
 * @param globalPolicies policies of scope GLOBAL
 * @param namespacePolicies namespace → its policies of scope NAMESPACE
 */
public record Snapshot(Map<String, Map<String, Resource>> resources, Map<InetAddress, Workload> workloadsByAddress,
        Map<InetAddress, Service> servicesByAddress, Map<String, List<Workload>> endpoints,
        List<Authorization> globalPolicies, Map<String, List<Authorization>> namespacePolicies) {

    public Snapshot {
        requireNonNull(resources, "resources");
    }

    public Optional<Workload> workloadByAddress(InetAddress address) {
        return Optional.ofNullable(workloadsByAddress.get(address));
    }

    public Optional<Service> serviceByAddress(InetAddress address) {
        return Optional.ofNullable(servicesByAddress.get(address));
    }

    public Optional<Workload> workload(String uid) {
        return resource(StateUpdates.WORKLOAD, uid).map(Resource::getWorkload);
    }

    /** The service whose key ({@code namespace/hostname}, the resource's name) is {@code key}. */
    public Optional<Service> service(String key) {
        return resource(StateUpdates.SERVICE, key).map(Resource::getService);
    }

    public Optional<Node> node(String name) {
        return resource(StateUpdates.NODE, name).map(Resource::getNode);
    }

    public Optional<Authorization> authorization(String name) {
        return resource(StateUpdates.AUTHORIZATION, name).map(Resource::getAuthorization);
    }

    /** The resource of type {@code typeUrl} named {@code name}, as received. */
    private Optional<Resource> resource(String typeUrl, String name) {
        return Optional.ofNullable(resources.getOrDefault(typeUrl, Map.of()).get(name));
    }

    /** Workloads backing {@code serviceKey} ({@code namespace/hostname}). */
    public List<Workload> endpoints(String serviceKey) {
        return endpoints.getOrDefault(serviceKey, List.of());
    }

    /** All workloads, in name order. */
    public List<Workload> workloads() {
        return resources.getOrDefault(StateUpdates.WORKLOAD, Map.of()).values().stream().map(Resource::getWorkload)
                .toList();
    }

    /** Mesh-wide, namespace and selector policies in scope for {@code workload}. */
    public List<Authorization> policiesFor(Workload workload) {
        List<Authorization> out = new ArrayList<>(globalPolicies);
        out.addAll(namespacePolicies.getOrDefault(workload.getNamespace(), List.of()));
        for (String name : workload.getAuthorizationPoliciesList()) {
            authorization(name).filter(a -> a.getScope() == Scope.WORKLOAD_SELECTOR).ifPresent(out::add);
        }
        return out;
    }
}
