package dev.wisp.node.state;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Scope;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.Workload;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Copy-on-write index: {@link #apply} builds a complete new {@link Snapshot} from the previous one
 * and publishes it with one volatile write, so readers never see half an update and need no lock.
 */
final class DefaultWorkloadIndex implements WorkloadIndex {
    /** Written only under {@code this} (by {@link #apply}); read lock-free by the data path. */
    private volatile Snapshot snapshot = empty();
    private final List<Runnable> listeners = new CopyOnWriteArrayList<>();

    @Override
    public Snapshot snapshot() {
        return snapshot;
    }

    @Override
    public void onChange(Runnable listener) {
        listeners.add(requireNonNull(listener, "listener"));
    }

    @Override
    public synchronized void apply(String typeUrl, List<Resource> resources, List<String> removed)
            throws InvalidResourceException {
        requireNonNull(typeUrl, "typeUrl");
        requireNonNull(resources, "resources");
        requireNonNull(removed, "removed");
        if (!TYPES.contains(typeUrl)) {
            throw new InvalidResourceException("unknown type URL '" + typeUrl + "'; expected one of " + TYPES);
        }
        for (Resource r : resources) {
            ResourceValidator.validate(typeUrl, r);
        }
        Map<String, Map<String, Resource>> all = new HashMap<>(snapshot.resources());
        Map<String, Resource> ofType = new TreeMap<>(all.getOrDefault(typeUrl, Map.of()));
        for (String name : removed) {
            ofType.remove(name);
        }
        for (Resource r : resources) {
            ofType.put(r.getName(), r);
        }
        all.put(typeUrl, Collections.unmodifiableMap(ofType));
        snapshot = build(all);
        listeners.forEach(Runnable::run);
    }

    @Override
    public Map<String, String> versions(String typeUrl) {
        Map<String, String> out = new LinkedHashMap<>();
        snapshot.resources().getOrDefault(typeUrl, Map.of()).forEach((name, r) -> out.put(name, r.getVersion()));
        return out;
    }

    private static Snapshot empty() {
        return new Snapshot(Map.of(), Map.of(), Map.of(), Map.of(), List.of(), Map.of());
    }

    /**
     * Builds the derived maps. Two workloads claiming one address would make lookups depend on
     * arrival order: the update is refused instead (the control plane removes the old owner first,
     * or in the same update).
     */
    private static Snapshot build(Map<String, Map<String, Resource>> all) throws InvalidResourceException {
        Map<InetAddress, Workload> byAddress = new HashMap<>();
        Map<String, List<Workload>> endpoints = new HashMap<>();
        for (Resource r : all.getOrDefault(WORKLOAD, Map.of()).values()) {
            Workload w = r.getWorkload();
            for (var bytes : w.getAddressesList()) {
                Workload owner = byAddress.putIfAbsent(ResourceValidator.address(bytes), w);
                if (owner != null && owner != w) {
                    throw new InvalidResourceException("workload '" + w.getUid() + "': field addresses: "
                            + ResourceValidator.address(bytes).getHostAddress() + " is already workload '"
                            + owner.getUid() + "'s address");
                }
            }
            for (String key : w.getServicesMap().keySet()) {
                endpoints.computeIfAbsent(key, k -> new ArrayList<>()).add(w);
            }
        }
        Map<InetAddress, Service> services = new HashMap<>();
        for (Resource r : all.getOrDefault(SERVICE, Map.of()).values()) {
            for (var bytes : r.getService().getAddressesList()) {
                services.put(ResourceValidator.address(bytes), r.getService());
            }
        }
        List<Authorization> global = new ArrayList<>();
        Map<String, List<Authorization>> byNamespace = new HashMap<>();
        for (Resource r : all.getOrDefault(AUTHORIZATION, Map.of()).values()) {
            Authorization a = r.getAuthorization();
            if (a.getScope() == Scope.GLOBAL) {
                global.add(a);
            } else if (a.getScope() == Scope.NAMESPACE) {
                byNamespace.computeIfAbsent(a.getNamespace(), k -> new ArrayList<>()).add(a);
            }
        }
        endpoints.replaceAll((k, v) -> List.copyOf(v));
        byNamespace.replaceAll((k, v) -> List.copyOf(v));
        return new Snapshot(Map.copyOf(all), Map.copyOf(byAddress), Map.copyOf(services), Map.copyOf(endpoints),
                List.copyOf(global), Map.copyOf(byNamespace));
    }
}
