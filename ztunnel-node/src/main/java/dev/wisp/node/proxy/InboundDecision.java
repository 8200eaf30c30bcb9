package dev.wisp.node.proxy;

import dev.wisp.api.workload.v1.MtlsMode;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.rbac.Authorizer;
import dev.wisp.node.rbac.ConnectionAttributes;
import dev.wisp.node.rbac.Verdict;
import dev.wisp.node.state.Snapshot;
import dev.wisp.spiffe.SpiffeId;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Optional;
import java.util.Set;

/**
 * Whether an inbound connection (HBONE or plaintext) may reach its destination: a pure function of
 * the state snapshot. The outcome is {@link Outcome.Allowed} (go ahead), {@link Outcome.BadRequest}
 * (an agent port, a workload of another node), {@link Outcome.NoWorkload} (unknown destination),
 * {@link Outcome.StrictMtls} (plaintext to STRICT mTLS), {@link Outcome.BypassedWaypoint} (a destination
 * behind a waypoint, reached by another peer: {@link WaypointGuard}) or {@link Outcome.Policy} (denied by
 * L4 policy); its HBONE status is 200, 400, 503, 401, 401 and 401.
 *
 * @param outcome what to answer, and why
 * @param destination the destination workload when known
 * @param source the source workload when known (by address, cross-checked against the identity)
 */
record InboundDecision(Outcome outcome, Optional<Workload> destination, Optional<Workload> source) {

    static InboundDecision decide(Snapshot state, String nodeName, Set<Integer> agentPorts,
            Optional<SpiffeId> peerId, InetAddress sourceIp, InetSocketAddress target) {
        if (Hbone.meshPort(target.getPort(), agentPorts)) {
            return new InboundDecision(new Outcome.BadRequest("destination port " + target.getPort()
                    + " is an agent port"), Optional.empty(), Optional.empty());
        }
        Optional<Workload> dst = state.workloadByAddress(target.getAddress());
        Optional<Workload> src = state.workloadByAddress(sourceIp)
                .filter(w -> peerId.isEmpty() || peerId.get().equals(IdentityProvider.workloadId(w)));
        if (dst.isEmpty()) {
            return new InboundDecision(new Outcome.NoWorkload("no workload has address "
                    + target.getAddress().getHostAddress()), dst, src);
        }
        Workload w = dst.get();
        if (!w.getNode().equals(nodeName)) {
            return new InboundDecision(new Outcome.BadRequest("workload " + w.getUid() + " runs on node "
                    + w.getNode() + ", not " + nodeName), dst, src);
        }
        if (peerId.isEmpty() && mtlsMode(w, target.getPort()) == MtlsMode.STRICT) {
            return new InboundDecision(new Outcome.StrictMtls("plaintext refused: workload " + w.getUid()
                    + " requires mTLS (PeerAuthentication STRICT)"), dst, src);
        }
        Optional<Outcome.BypassedWaypoint> bypassed = WaypointGuard.check(state, w, peerId);
        if (bypassed.isPresent()) {
            return new InboundDecision(bypassed.get(), dst, src);
        }
        Verdict v = Authorizer.authorize(new ConnectionAttributes(sourceIp, peerId, target.getAddress(),
                target.getPort()), state.policiesFor(w));
        if (v.allowed()) {
            return new InboundDecision(Outcome.allowed(), dst, src);
        }
        return new InboundDecision(new Outcome.Policy(v.policy(), v.reason()
                + (v.dryRun().isEmpty() ? "" : " (dry-run: " + String.join("; ", v.dryRun()) + ")")), dst, src);
    }

    static MtlsMode mtlsMode(Workload w, int port) {
        MtlsMode m = w.getPortMtlsMap().getOrDefault(port, MtlsMode.MTLS_UNSET);
        return m != MtlsMode.MTLS_UNSET ? m : w.getMtlsMode();
    }
}
