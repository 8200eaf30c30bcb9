package dev.wisp.node.proxy;

import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.state.Snapshot;
import dev.wisp.spiffe.SpiffeId;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The destination side of a waypoint (pure): a workload is behind a waypoint when its own resource or
 * a Service it backs names one, and then only a peer whose verified certificate identity is one of
 * those waypoints' may reach it, so that L7 routes and policy cannot be skipped by dialling the pod.
 * The identity is the one TLS verified (never a header, never the {@code forwarded} claim); a
 * connection without a certificate (plaintext) is never the waypoint's.
 */
final class WaypointGuard {
    private WaypointGuard() {}

    /** The refusal for a connection from {@code peerId} to {@code w}, or empty when it may pass. */
    static Optional<Outcome.BypassedWaypoint> check(Snapshot state, Workload w, Optional<SpiffeId> peerId) {
        List<SpiffeId> waypoints = waypoints(state, w);
        if (waypoints.isEmpty() || (peerId.isPresent() && waypoints.contains(peerId.get()))) {
            return Optional.empty();
        }
        return Optional.of(new Outcome.BypassedWaypoint("bypassed waypoint: workload " + w.getNamespace() + "/"
                + w.getName() + " takes traffic only from its waypoint " + waypoints + ", not from "
                + peerId.map(SpiffeId::toString).orElse("a peer without a certificate")));
    }

    /** The identities of the waypoints in front of {@code w}: its own and its services'. */
    static List<SpiffeId> waypoints(Snapshot state, Workload w) {
        List<SpiffeId> out = new ArrayList<>();
        if (w.hasWaypoint()) {
            add(out, w.getWaypoint());
        }
        for (String key : w.getServicesMap().keySet()) {
            state.service(key).filter(Service::hasWaypoint).ifPresent(s -> add(out, s.getWaypoint()));
        }
        return out;
    }

    private static void add(List<SpiffeId> out, GatewayAddress g) {
        // The state index validated the identity (ResourceValidator), so this does not throw.
        SpiffeId id = SpiffeId.parse(g.getIdentity());
        if (!out.contains(id)) {
            out.add(id);
        }
    }
}
