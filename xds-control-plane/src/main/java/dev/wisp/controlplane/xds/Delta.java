package dev.wisp.controlplane.xds;

import dev.wisp.api.workload.v1.Resource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** What turns one name → resource map into another: upserts and removed names (pure). */
record Delta(List<Resource> upserts, List<String> removed) {
    static final Delta EMPTY = new Delta(List.of(), List.of());

    boolean isEmpty() {
        return upserts.isEmpty() && removed.isEmpty();
    }

    /** Compares by version only: equal versions mean equal content (versions are digests). */
    static Delta between(Map<String, Resource> from, Map<String, Resource> to) {
        if (from == to) {
            return EMPTY;
        }
        List<Resource> upserts = new ArrayList<>();
        List<String> removed = new ArrayList<>();
        for (var e : to.entrySet()) {
            Resource held = from.get(e.getKey());
            if (held == null || !held.getVersion().equals(e.getValue().getVersion())) {
                upserts.add(e.getValue());
            }
        }
        for (String name : from.keySet()) {
            if (!to.containsKey(name)) {
                removed.add(name);
            }
        }
        return upserts.isEmpty() && removed.isEmpty() ? EMPTY : new Delta(List.copyOf(upserts), List.copyOf(removed));
    }
}
