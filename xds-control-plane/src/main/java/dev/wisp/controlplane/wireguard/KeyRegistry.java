package dev.wisp.controlplane.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.HostPort;
import dev.wisp.controlplane.model.Cidr;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.model.WireGuardEntry;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The WireGuard key registry: which public key, endpoint and pod CIDRs each node's agent published
 * for itself. Pure and immutable: {@link #register} answers a new registry or a refusal, so the
 * control plane decides (and tests check) without I/O.
 *
 * <p>The node a claim is registered for is the node the agent's credential authenticated, never a
 * name in the claim. A claim is refused whole (the node keeps its previous entry) when it is
 * malformed or takes what belongs to another node: a key registered or annotated for another node,
 * an endpoint that is not one of the node's own addresses or is another node's, a pod CIDR outside
 * the node's declared {@code podCIDRs} or overlapping another node's declared or registered CIDR.
 * The first node to hold something keeps it; declared CIDRs and addresses (the Node objects) always
 * win over claims, so the order agents connect in cannot take them away.
 *
 * <p>A node may replace its own key (a key rotation): the new key passes the same checks, and the
 * keys it replaced (its last {@value #RETIRED_PER_NODE}) stay its own, so no other node can claim
 * a key that peers may still hold for it.
 *
 * <p>Where Node objects are the authority on pod CIDRs ({@link #declaredCidrsOnly()}: the
 * Kubernetes source, whose Nodes carry {@code spec.podCIDRs} from the node IPAM controller), a node
 * whose Node declares none may claim no CIDR at all: otherwise the first agent to claim a range
 * nobody declared would have other nodes route it there. An agent that claims nothing is routed
 * its Node's declared CIDRs (the translator serves the declared ones).
 */
public final class KeyRegistry {
    /** At most this many pod CIDRs per node (Kubernetes gives at most one per address family). */
    static final int MAX_CIDRS = 8;
    /** Replaced keys remembered per node. */
    static final int RETIRED_PER_NODE = 8;
    private static final KeyRegistry EMPTY = new KeyRegistry(Map.of(), Map.of(), false);
    private static final KeyRegistry EMPTY_DECLARED_ONLY = new KeyRegistry(Map.of(), Map.of(), true);

    /** Why a claim was refused: the label of the refusal metric. */
    public enum Reason {
        UNKNOWN_NODE, MALFORMED, KEY_OF_ANOTHER_NODE, ENDPOINT_NOT_OWN, ENDPOINT_OF_ANOTHER_NODE, CIDR_NOT_DECLARED, CIDR_OVERLAPS_ANOTHER_NODE;

        /** The metric label: lower case. */
        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * What an agent sent, unchecked (hostile input).
     *
     * @param publicKey base64 Curve25519 public key
     * @param endpoint {@code ip:port} of its device
     * @param podCidrs the pod CIDRs to be routed to it
     */
    public record Claim(String publicKey, String endpoint, List<String> podCidrs) {
        public Claim {
            requireNonNull(publicKey, "publicKey");
            requireNonNull(endpoint, "endpoint");
            podCidrs = List.copyOf(requireNonNull(podCidrs, "podCidrs"));
        }
    }

    /** The answer to a claim. */
    public sealed interface Outcome {
        /** Registered: {@code registry} holds {@code entry}; {@code changed} when it differs from before. */
        record Accepted(KeyRegistry registry, WireGuardEntry entry, boolean changed) implements Outcome {}

        /** Refused, with the reason and a sentence naming what was claimed and whose it is. */
        record Refused(Reason reason, String message) implements Outcome {}
    }

    /** A refusal found when entries are checked again against a changed model. */
    public record Dropped(String node, Reason reason, String message) {}

    /** The registry after {@link #revalidate}, and the entries it dropped. */
    public record Revalidated(KeyRegistry registry, List<Dropped> dropped) {}

    private final Map<String, WireGuardEntry> entries;
    /** The keys each node replaced, oldest first (at most {@link #RETIRED_PER_NODE}). */
    private final Map<String, List<String>> retired;
    /** Whether only CIDRs a node's Node object declares may be claimed (none when it declares none). */
    private final boolean declaredCidrsOnly;

    private KeyRegistry(Map<String, WireGuardEntry> entries, Map<String, List<String>> retired,
            boolean declaredCidrsOnly) {
        this.entries = entries;
        this.retired = retired;
        this.declaredCidrsOnly = declaredCidrsOnly;
    }

    /** An empty registry where a node without declared pod CIDRs may claim any range no other node holds. */
    public static KeyRegistry empty() {
        return EMPTY;
    }

    /**
     * An empty registry; with {@code declaredCidrsOnly} a node may claim only pod CIDRs within those
     * its Node object declares, and none when it declares none.
     */
    public static KeyRegistry empty(boolean declaredCidrsOnly) {
        return declaredCidrsOnly ? EMPTY_DECLARED_ONLY : EMPTY;
    }

    /** Whether only declared pod CIDRs may be claimed. */
    public boolean declaredCidrsOnly() {
        return declaredCidrsOnly;
    }

    /** Accepted entries by node name, in the order they were first registered. */
    public Map<String, WireGuardEntry> entries() {
        return entries;
    }

    /**
     * Checks {@code claim} by {@code node} against the declared {@code nodes} and the other nodes'
     * entries.
     */
    public Outcome register(String node, Claim claim, List<NodeDef> nodes) {
        requireNonNull(node, "node");
        requireNonNull(claim, "claim");
        requireNonNull(nodes, "nodes");
        NodeDef self = nodes.stream().filter(n -> n.ref().name().equals(node)).findFirst().orElse(null);
        if (self == null) {
            return new Outcome.Refused(Reason.UNKNOWN_NODE, "node " + node + " has no Node object; declare it first");
        }
        Optional<String> key = publicKey(claim.publicKey());
        if (key.isEmpty()) {
            return new Outcome.Refused(Reason.MALFORMED, "node " + node + " published a public key that is not 32 "
                    + "bytes of base64 (or is all zeros)");
        }
        for (NodeDef n : nodes) {
            if (!n.ref().name().equals(node) && n.wireguardPublicKey().equals(key.get())) {
                return refusedKey(node, key.get(), n.ref().name(), "annotated on");
            }
        }
        for (var e : entries.entrySet()) {
            if (!e.getKey().equals(node) && e.getValue().publicKey().equals(key.get())) {
                return refusedKey(node, key.get(), e.getKey(), "registered for");
            }
        }
        for (var e : retired.entrySet()) {
            if (!e.getKey().equals(node) && e.getValue().contains(key.get())) {
                return refusedKey(node, key.get(), e.getKey(), "formerly registered for");
            }
        }
        InetSocketAddress endpoint;
        try {
            HostPort hp = HostPort.parse(claim.endpoint());
            if (hp.port() == 0) {
                throw new IllegalArgumentException("port 0");
            }
            endpoint = new InetSocketAddress(Cidr.Addresses.parseLiteral(hp.host()), hp.port());
        } catch (IllegalArgumentException e) {
            return new Outcome.Refused(Reason.MALFORMED, "node " + node + " published the endpoint '"
                    + printable(claim.endpoint()) + "', which is not IP:PORT");
        }
        Outcome endpointRefusal = checkEndpoint(node, self, endpoint, nodes);
        if (endpointRefusal != null) {
            return endpointRefusal;
        }
        if (claim.podCidrs().size() > MAX_CIDRS) {
            return new Outcome.Refused(Reason.MALFORMED, "node " + node + " published " + claim.podCidrs().size()
                    + " pod CIDRs; at most " + MAX_CIDRS);
        }
        List<Cidr> cidrs = new ArrayList<>();
        for (String text : claim.podCidrs()) {
            Cidr c;
            try {
                c = network(Cidr.parse(text));
            } catch (IllegalArgumentException e) {
                return new Outcome.Refused(Reason.MALFORMED, "node " + node + " published the pod CIDR '"
                        + printable(text) + "': " + e.getMessage());
            }
            Outcome cidrRefusal = checkCidr(node, self, c, nodes);
            if (cidrRefusal != null) {
                return cidrRefusal;
            }
            cidrs.add(c);
        }
        WireGuardEntry entry = new WireGuardEntry(key.get(), endpoint, cidrs);
        if (entry.equals(entries.get(node))) {
            return new Outcome.Accepted(this, entry, false);
        }
        Map<String, WireGuardEntry> next = new LinkedHashMap<>(entries);
        WireGuardEntry before = next.put(node, entry);
        Map<String, List<String>> retiredNext = retired;
        if (before != null && !before.publicKey().equals(entry.publicKey())) {
            List<String> keys = new ArrayList<>(retired.getOrDefault(node, List.of()));
            keys.remove(entry.publicKey());
            keys.add(before.publicKey());
            if (keys.size() > RETIRED_PER_NODE) {
                keys.removeFirst();
            }
            Map<String, List<String>> r = new LinkedHashMap<>(retired);
            r.put(node, List.copyOf(keys));
            retiredNext = Collections.unmodifiableMap(r);
        }
        return new Outcome.Accepted(new KeyRegistry(Collections.unmodifiableMap(next), retiredNext, declaredCidrsOnly),
                entry, true);
    }

    /**
     * Checks every entry again, in registration order, against a changed set of declared nodes
     * (a node removed, a CIDR or an annotation changed): entries no longer valid are dropped.
     */
    public Revalidated revalidate(List<NodeDef> nodes) {
        requireNonNull(nodes, "nodes");
        Map<String, List<String>> kept = new LinkedHashMap<>(retired);
        kept.keySet().retainAll(nodes.stream().map(n -> n.ref().name()).toList());
        KeyRegistry r = new KeyRegistry(Map.of(), Collections.unmodifiableMap(kept), declaredCidrsOnly);
        List<Dropped> dropped = new ArrayList<>();
        for (var e : entries.entrySet()) {
            WireGuardEntry w = e.getValue();
            Claim again = new Claim(w.publicKey(), w.endpointText(), w.podCidrs().stream().map(Cidr::toString)
                    .toList());
            switch (r.register(e.getKey(), again, nodes)) {
                case Outcome.Accepted a -> r = a.registry();
                case Outcome.Refused f -> dropped.add(new Dropped(e.getKey(), f.reason(), f.message()));
            }
        }
        return new Revalidated(dropped.isEmpty() && r.entries.equals(entries) && r.retired.equals(retired) ? this : r,
                List.copyOf(dropped));
    }

    private Outcome checkEndpoint(String node, NodeDef self, InetSocketAddress endpoint, List<NodeDef> nodes) {
        InetAddress ip = endpoint.getAddress();
        for (NodeDef n : nodes) {
            if (!n.ref().name().equals(node) && n.addresses().contains(ip)) {
                return new Outcome.Refused(Reason.ENDPOINT_OF_ANOTHER_NODE, "node " + node + " published the endpoint "
                        + ip.getHostAddress() + ", an address of node " + n.ref().name());
            }
        }
        if (!self.addresses().isEmpty() && !self.addresses().contains(ip)) {
            return new Outcome.Refused(Reason.ENDPOINT_NOT_OWN, "node " + node + " published the endpoint "
                    + ip.getHostAddress() + ", which is not one of its addresses " + self.addresses().stream()
                            .map(InetAddress::getHostAddress).toList());
        }
        for (var e : entries.entrySet()) {
            if (!e.getKey().equals(node) && e.getValue().endpoint().equals(endpoint)) {
                return new Outcome.Refused(Reason.ENDPOINT_OF_ANOTHER_NODE, "node " + node + " published the endpoint "
                        + e.getValue().endpointText() + ", registered for node " + e.getKey());
            }
        }
        return null;
    }

    private Outcome checkCidr(String node, NodeDef self, Cidr c, List<NodeDef> nodes) {
        List<Cidr> declared = self.podCidrs().stream().map(KeyRegistry::declared).flatMap(Optional::stream).toList();
        if (declaredCidrsOnly && declared.isEmpty()) {
            return new Outcome.Refused(Reason.CIDR_NOT_DECLARED, "node " + node + " published the pod CIDR " + c
                    + ", but its Node declares no spec.podCIDRs, and here pod CIDRs are taken from Node objects only"
                    + " (is the node IPAM controller on? Otherwise leave --wireguard-pod-cidr out)");
        }
        if (!self.podCidrs().isEmpty() && declared.stream().noneMatch(d -> within(c, d))) {
            return new Outcome.Refused(Reason.CIDR_NOT_DECLARED, "node " + node + " published the pod CIDR " + c
                    + ", which is not within its Node's podCIDRs " + self.podCidrs());
        }
        for (NodeDef n : nodes) {
            if (n.ref().name().equals(node)) {
                continue;
            }
            for (String text : n.podCidrs()) {
                Optional<Cidr> other = declared(text);
                if (other.isPresent() && overlap(c, other.get())) {
                    return overlapping(node, c, other.get(), n.ref().name());
                }
            }
        }
        for (var e : entries.entrySet()) {
            if (e.getKey().equals(node)) {
                continue;
            }
            for (Cidr other : e.getValue().podCidrs()) {
                if (overlap(c, other)) {
                    return overlapping(node, c, other, e.getKey());
                }
            }
        }
        return null;
    }

    private static Outcome overlapping(String node, Cidr c, Cidr other, String owner) {
        return new Outcome.Refused(Reason.CIDR_OVERLAPS_ANOTHER_NODE, "node " + node + " published the pod CIDR " + c
                + ", which overlaps " + other + " of node " + owner);
    }

    private static Outcome refusedKey(String node, String key, String owner, String how) {
        return new Outcome.Refused(Reason.KEY_OF_ANOTHER_NODE, "node " + node + " published the public key " + key
                + ", " + how + " node " + owner);
    }

    /** The base64 of 32 bytes that are not all zero, re-encoded canonically; empty otherwise. */
    static Optional<String> publicKey(String text) {
        if (text.length() != 44) {
            return Optional.empty();
        }
        byte[] k;
        try {
            k = Base64.getDecoder().decode(text);
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
        int or = 0;
        for (byte b : k) {
            or |= b;
        }
        return k.length == 32 && or != 0 ? Optional.of(Base64.getEncoder().encodeToString(k)) : Optional.empty();
    }

    private static Optional<Cidr> declared(String text) {
        try {
            return Optional.of(network(Cidr.parse(text)));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }

    /** {@code c} with the host bits cleared: 10.1.2.3/24 is 10.1.2.0/24. */
    static Cidr network(Cidr c) {
        byte[] a = c.address().getAddress();
        for (int bit = c.length(); bit < a.length * 8; bit++) {
            a[bit / 8] &= (byte) ~(0x80 >>> (bit % 8));
        }
        try {
            return new Cidr(InetAddress.getByAddress(a), c.length());
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Whether every address of {@code inner} is in {@code outer}. */
    static boolean within(Cidr inner, Cidr outer) {
        return inner.length() >= outer.length() && outer.contains(inner.address());
    }

    static boolean overlap(Cidr a, Cidr b) {
        return within(a, b) || within(b, a);
    }

    /** Agent input quoted in a log line: at most 64 printable ASCII characters. */
    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length() && b.length() < 64; i++) {
            char ch = s.charAt(i);
            b.append(ch >= 0x20 && ch < 0x7f ? ch : '?');
        }
        return b.toString();
    }
}
