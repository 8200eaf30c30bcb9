package dev.wisp.controlplane.xds;

import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.state.InvalidResourceException;
import dev.wisp.node.state.StateUpdates;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;

/**
 * An in-memory {@link StateUpdates} standing in for the agent's node index: applies atomically,
 * refuses what {@link #refuse} matches, and counts what it receives so tests can prove that
 * nothing is sent twice (an upsert of a version already held) and nothing is lost.
 */
final class MemoryState implements StateUpdates {
    /** Guarded by this. */
    private final Map<String, Map<String, Resource>> held = new HashMap<>();
    private int upserts;
    private int removals;
    private int duplicates;
    volatile Predicate<Resource> refuse = r -> false;

    @Override
    public synchronized void apply(String typeUrl, List<Resource> resources, List<String> removed)
            throws InvalidResourceException {
        Set<String> names = new HashSet<>();
        for (Resource r : resources) {
            if (refuse.test(r)) {
                throw new InvalidResourceException("refusing " + r.getName() + ": test says so");
            }
            if (!names.add(r.getName())) {
                throw new InvalidResourceException(r.getName() + " appears twice in one response");
            }
        }
        Map<String, Resource> m = held.computeIfAbsent(typeUrl, t -> new TreeMap<>());
        for (Resource r : resources) {
            Resource old = m.put(r.getName(), r);
            if (old != null && old.getVersion().equals(r.getVersion())) {
                duplicates++;
            }
            upserts++;
        }
        for (String n : removed) {
            m.remove(n);
            removals++;
        }
    }

    @Override
    public synchronized Map<String, String> versions(String typeUrl) {
        Map<String, String> out = new TreeMap<>();
        held.getOrDefault(typeUrl, Map.of()).forEach((n, r) -> out.put(n, r.getVersion()));
        return out;
    }

    synchronized Map<String, Resource> resources(String typeUrl) {
        return Map.copyOf(held.getOrDefault(typeUrl, Map.of()));
    }

    synchronized int upserts() {
        return upserts;
    }

    synchronized int removals() {
        return removals;
    }

    synchronized int duplicates() {
        return duplicates;
    }
}
