package dev.wisp.node.state;

import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.Workload;
import java.net.InetAddress;
import java.util.List;
import java.util.Optional;

/**
 * What the node agent knows about the mesh: workloads, services, nodes and L4 authorization
 * policies, fed through {@link StateUpdates#apply}. Every lookup reads one immutable
 * {@link Snapshot}, so a connection sees a consistent view even while an update is applied; each
 * {@code apply} publishes a new snapshot atomically. Lookups by address are hash lookups.
 */
public interface WorkloadIndex extends StateUpdates {

    /** An empty index. */
    static WorkloadIndex create() {
        return new DefaultWorkloadIndex();
    }

    /** The current snapshot; cheap (a volatile read). */
    Snapshot snapshot();

    /** Registers a callback run (on the applying thread) after each successful apply. */
    void onChange(Runnable listener);

    default Optional<Workload> workloadByAddress(InetAddress address) {
        return snapshot().workloadByAddress(address);
    }

    default Optional<Service> serviceByAddress(InetAddress address) {
        return snapshot().serviceByAddress(address);
    }

    default Optional<Node> node(String name) {
        return snapshot().node(name);
    }

    /** Policies that apply to {@code workload}: mesh-wide, its namespace's, and those selecting it. */
    default List<Authorization> policiesFor(Workload workload) {
        return snapshot().policiesFor(workload);
    }
}
