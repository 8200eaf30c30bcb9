package dev.wisp.node.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Node;
import dev.wisp.base.HostPort;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.Prefix;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What this node's WireGuard device and routing should look like, as a pure function of the Node
 * resources the control plane sent: one peer per other node that has a key and an endpoint (its pod
 * CIDRs and its addresses as allowed IPs; only the pod CIDRs, and the addresses when HBONE goes
 * through WireGuard, are routed into the device), the prefixes routed
 * into the device, and, in strict mode, the prefixes that are unreachable whenever the device has
 * no route for them (no peer, or no device).
 *
 * @param peers the device's peers
 * @param routed prefixes routed into the device (other nodes' pod CIDRs with a peer)
 * @param unreachable strict mode: prefixes dropped when not routed into the device (every other
 *            node's pod CIDR, with or without a peer, and the cluster CIDRs)
 * @param local prefixes that must never go to the device (this node's own pod CIDRs inside a
 *            cluster CIDR)
 * @param hboneRouted other nodes' addresses to which HBONE goes through the device
 * @param hboneUnreachable strict mode with HBONE over WireGuard: every other node's address
 * @param skipped why a node got no peer (no key yet, a bad endpoint), for the log
 */
public record PeerPlan(List<PeerSpec> peers, Set<Prefix> routed, Set<Prefix> unreachable, Set<Prefix> local,
        Set<Prefix> hboneRouted, Set<Prefix> hboneUnreachable, List<String> skipped) {

    /**
     * One peer: another node's device.
     *
     * @param allowedIps what the device accepts from the peer and sends to it: its pod CIDRs and its
     *            addresses
     * @param sentTo the allowed IPs this node routes into the device, whose packets install the
     *            peer just in time: its pod CIDRs, plus its addresses when HBONE goes through WireGuard
     */
    public record PeerSpec(String node, Key publicKey, InetSocketAddress endpoint, List<Prefix> allowedIps,
            List<Prefix> sentTo) {}

    /**
     * The plan for {@code self} among {@code nodes}.
     *
     * @param ownCidrs this node's pod CIDRs from its settings ({@code --wireguard-pod-cidr}, may be
     *            empty): used until, and unless, this node's own Node resource names some (on
     *            Kubernetes its Node's {@code spec.podCIDRs}, which the control plane serves)
     * @param clusterCidrs CIDRs that hold every node's pods; in strict mode what of them is not this
     *            node's is unreachable except through the device
     * @param strict whether traffic for other nodes' pods is dropped rather than sent in clear when
     *            the device has no peer for it
     */
    public static PeerPlan of(String self, Collection<Node> nodes, List<Prefix> ownCidrs, List<Prefix> clusterCidrs,
            boolean strict) {
        requireNonNull(self, "self");
        List<PeerSpec> peers = new ArrayList<>();
        Set<Prefix> routed = new LinkedHashSet<>();
        Set<Prefix> unreachable = new LinkedHashSet<>();
        Set<Prefix> hboneRouted = new LinkedHashSet<>();
        Set<Prefix> hboneUnreachable = new LinkedHashSet<>();
        List<String> skipped = new ArrayList<>();
        boolean hbone = nodes.stream().filter(n -> n.getName().equals(self)).anyMatch(Node::getHboneOverWireguard);
        for (Node n : nodes) {
            if (n.getName().equals(self)) {
                continue;
            }
            List<Prefix> cidrs = new ArrayList<>();
            for (String c : n.getPodCidrsList()) {
                try {
                    cidrs.add(Prefix.parse(c));
                } catch (IllegalArgumentException e) {
                    skipped.add("node " + n.getName() + ": pod CIDR " + c + " ignored: " + e.getMessage());
                }
            }
            List<Prefix> addresses = new ArrayList<>();
            for (var a : n.getAddressesList()) {
                try {
                    InetAddress ip = InetAddress.getByAddress(a.toByteArray());
                    addresses.add(new Prefix(ip, ip.getAddress().length * 8));
                } catch (UnknownHostException e) {
                    skipped.add("node " + n.getName() + ": an address of " + a.size() + " bytes ignored");
                }
            }
            if (strict) {
                unreachable.addAll(cidrs);
                if (hbone) {
                    hboneUnreachable.addAll(addresses);
                }
            }
            if (n.getWireguardPublicKey().isEmpty() || n.getWireguardEndpoint().isEmpty()) {
                skipped.add("node " + n.getName() + " has no WireGuard key registered yet");
                continue;
            }
            Key key;
            InetSocketAddress endpoint;
            try {
                key = Key.fromBase64(n.getWireguardPublicKey());
                HostPort hp = HostPort.parse(n.getWireguardEndpoint());
                endpoint = new InetSocketAddress(InetAddress.ofLiteral(hp.host()), hp.port());
            } catch (IllegalArgumentException e) {
                skipped.add("node " + n.getName() + ": WireGuard key or endpoint refused: " + e.getMessage());
                continue;
            }
            // The node's own addresses are allowed sources even when HBONE goes in clear: a packet
            // from that node to one of this node's pods is routed into its device (our pod CIDRs are
            // its routed prefixes), and the device drops what comes from a source the peer may not
            // use. Such a packet is the node's HBONE server answering a pod that called it itself,
            // as a waypoint does; without this the answer is lost and the call times out.
            List<Prefix> allowed = new ArrayList<>(cidrs);
            allowed.addAll(addresses);
            List<Prefix> sentTo = new ArrayList<>(cidrs);
            if (hbone && n.getHboneOverWireguard()) {
                sentTo.addAll(addresses);
                hboneRouted.addAll(addresses);
            }
            routed.addAll(cidrs);
            peers.add(new PeerSpec(n.getName(), key, endpoint, List.copyOf(allowed), List.copyOf(sentTo)));
        }
        Set<Prefix> local = new LinkedHashSet<>();
        List<Prefix> own = own(self, nodes, ownCidrs, skipped);
        if (strict && !own.isEmpty()) {
            unreachable.addAll(clusterCidrs);
            local.addAll(own);
        } else if (strict && !clusterCidrs.isEmpty()) {
            // Unreachable cluster CIDRs without a "throw" for this node's own pods would cut the
            // node off from its own pods: other nodes' pod CIDRs stay unreachable, one by one.
            skipped.add("cluster CIDRs " + clusterCidrs + " not made unreachable yet: this node's own pod CIDRs are "
                    + "not known (no --wireguard-pod-cidr, and its Node names none)");
        }
        return new PeerPlan(List.copyOf(peers), Set.copyOf(routed), Set.copyOf(unreachable), Set.copyOf(local),
                Set.copyOf(hboneRouted), Set.copyOf(hboneUnreachable), List.copyOf(skipped));
    }

    /**
     * This node's pod CIDRs: those its own Node resource names (the control plane's word: the Node
     * object's declared CIDRs, or what it accepted from this agent), else {@code configured}.
     */
    private static List<Prefix> own(String self, Collection<Node> nodes, List<Prefix> configured,
            List<String> skipped) {
        List<Prefix> served = new ArrayList<>();
        for (Node n : nodes) {
            if (n.getName().equals(self)) {
                for (String c : n.getPodCidrsList()) {
                    try {
                        served.add(Prefix.parse(c));
                    } catch (IllegalArgumentException e) {
                        skipped.add("this node's pod CIDR " + c + " ignored: " + e.getMessage());
                    }
                }
            }
        }
        return served.isEmpty() ? configured : List.copyOf(served);
    }
}
