package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.base.IpText;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.Snapshot;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.spiffe.SpiffeId;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Where an inbound connection comes from, for policy ({@code ipBlocks}) and for the logs alike: the
 * one rule that decides whether the address a peer claims in {@code forwarded: for=} counts. A pure
 * function of the state snapshot; what a peer sends is a claim, and it counts only when the peer's
 * verified certificate makes it true:
 *
 * <ol>
 *   <li><b>Waypoint.</b> The certificate's identity is a waypoint's: a waypoint terminates its
 *       clients' connections and vouches for who they are (as ztunnel trusts {@code forwarded}
 *       from its waypoint only). An identity is a waypoint's when some workload or service of the
 *       state names, in its {@code waypoint} field, the address of a workload with that identity.
 *   <li><b>Own workload, own node.</b> The claimed address belongs to a workload whose identity is
 *       the certificate's <em>and</em> which runs on the node whose address is the connection's TCP
 *       peer: an agent speaks for the workloads of its own node, with their own identities.
 * </ol>
 *
 * Otherwise (no claim, no certificate, a claim for another identity's workload, a claim carried
 * from another node's address) the source is the connection's TCP peer.
 *
 * <p>IPv6 follows the same rules, address by address: a claimed IPv6 address counts only as the
 * address of a workload with the certificate's identity (whatever family its node's address, the
 * TCP peer, has: a node is one node over both). An IPv4-mapped address ({@code ::ffff:a.b.c.d}, a
 * dual-stack listener's IPv4 peer) is its IPv4 address, on the peer and in the claim, so it finds
 * the same node and workload as the plain IPv4 address and no other; an IPv4-compatible
 * ({@code ::a.b.c.d}) or scoped address is no workload's.
 *
 * @param address the source address to authorize and log
 * @param basis why this address
 */
record SourceAddress(InetSocketAddress address, Basis basis) {

    /** Why the source is what it is. */
    enum Basis {
        /** No claim: the TCP peer. */
        PEER,
        /** A claim vouched for by a waypoint's certificate. */
        WAYPOINT,
        /** A claim for a workload of the peer's own node, with the peer certificate's identity. */
        OWN_WORKLOAD,
        /** A claim that does not count: the TCP peer. */
        CLAIM_IGNORED
    }

    SourceAddress {
        requireNonNull(address, "address");
        requireNonNull(basis, "basis");
    }

    /**
     * @param peerId the SPIFFE ID the peer's certificate proved (empty for plaintext)
     * @param tcpPeer the connection's remote address
     * @param claimed the address in {@code forwarded: for=}, if any
     */
    static SourceAddress of(Snapshot state, Optional<SpiffeId> peerId, InetSocketAddress tcpPeer,
            Optional<InetSocketAddress> claimed) {
        tcpPeer = unmapped(tcpPeer);
        if (claimed.isEmpty()) {
            return new SourceAddress(tcpPeer, Basis.PEER);
        }
        if (peerId.isEmpty()) {
            return new SourceAddress(tcpPeer, Basis.CLAIM_IGNORED);
        }
        InetSocketAddress claim = unmapped(claimed.get());
        if (ownWorkloadOnPeerNode(state, peerId.get(), tcpPeer.getAddress(), claim.getAddress())) {
            return new SourceAddress(claim, Basis.OWN_WORKLOAD);
        }
        if (isWaypoint(state, peerId.get())) {
            return new SourceAddress(claim, Basis.WAYPOINT);
        }
        return new SourceAddress(tcpPeer, Basis.CLAIM_IGNORED);
    }

    /** {@code ::ffff:a.b.c.d} as {@code a.b.c.d}; any other address as it is. */
    static InetSocketAddress unmapped(InetSocketAddress a) {
        byte[] b = a.getAddress().getAddress();
        if (!IpText.isIpv4Mapped(b)) {
            return a;
        }
        try {
            return new InetSocketAddress(InetAddress.getByAddress(Arrays.copyOfRange(b, 12, 16)), a.getPort());
        } catch (UnknownHostException e) {
            throw new IllegalStateException("4 bytes are an IPv4 address", e);
        }
    }

    private static boolean ownWorkloadOnPeerNode(Snapshot state, SpiffeId peerId, InetAddress tcpPeer,
            InetAddress claim) {
        Optional<Workload> w = state.workloadByAddress(claim)
                .filter(x -> IdentityProvider.workloadId(x).equals(peerId));
        return w.flatMap(x -> state.node(x.getNode()))
                .map(node -> node.getAddressesList().contains(ByteString.copyFrom(tcpPeer.getAddress())))
                .orElse(false);
    }

    /**
     * Whether {@code peerId} is the identity of a workload that some workload or service names as
     * its waypoint. Scans the state: it runs only for a claim that rule 2 did not accept.
     */
    static boolean isWaypoint(Snapshot state, SpiffeId peerId) {
        Map<String, Map<String, Resource>> r = state.resources();
        Stream<GatewayAddress> waypoints = Stream.concat(
                r.getOrDefault(StateUpdates.WORKLOAD, Map.of()).values().stream().map(Resource::getWorkload)
                        .filter(Workload::hasWaypoint).map(Workload::getWaypoint),
                r.getOrDefault(StateUpdates.SERVICE, Map.of()).values().stream().map(Resource::getService)
                        .filter(s -> s.hasWaypoint()).map(s -> s.getWaypoint()));
        return waypoints.map(g -> Route.address(g.getAddress())).distinct()
                .anyMatch(a -> state.workloadByAddress(a).map(w -> IdentityProvider.workloadId(w).equals(peerId))
                        .orElse(false));
    }
}
