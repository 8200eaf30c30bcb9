package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * What a local cluster holds: a name, a number of nodes, the pods on them, and the address plan.
 *
 * <p>Addresses: the underlay is {@code 10.<base>.0.0/24} (host side .1, bridge .2, node i at
 * {@code .(10+i)}); node i's pods live in {@code 10.<base+1>.i.0/24}, gateway {@code .1}, pods
 * from {@code .10}. All of it exists only inside the cluster's own network namespaces; the
 * optional host link joins the machine's root namespace to the underlay.
 *
 * <p>With IPv6 ({@link Stack#DUAL}, {@link Stack#IPV6}) every such address {@code 10.X.Y.Z} has its twin
 * {@code fd00:X:Y::Z} (the same digits, see {@link AddressPlan#ipv6Of}): the underlay
 * {@code fd00:<base>:0::/64}, node i's pods {@code fd00:<base+1>:i::/64}, the Services'
 * {@code fd00:<base+1>:250::/64}, routed between the nodes as IPv4 is; an IPv6-only cluster has only
 * the twins.
 *
 * @param name short name, {@code [a-z][a-z0-9]{0,7}}; prefixes every namespace and cgroup
 * @param nodes how many nodes (1..50)
 * @param pods the pods, each naming its node index
 * @param base second octet of the address plan (10..252, even: 10.254 and 10.255 stay free for addresses no cluster has)
 * @param hostLink whether to connect the root namespace to the underlay (for Prometheus, metrics URLs)
 * @param stack the IP families of nodes, pods and Services
 */
public record ClusterSpec(String name, int nodes, List<PodSpec> pods, int base, boolean hostLink, Stack stack) {
    private static final Pattern NAME = Pattern.compile("[a-z][a-z0-9]{0,7}");
    /** A pod's name: also a part of its network namespace's and cgroup's names. */
    static final Pattern POD = Pattern.compile("[a-z][a-z0-9-]{0,15}");

    /**
     * The IP families the cluster gives its nodes, pods and Services, in the order their addresses are
     * listed (the first is the primary one, Kubernetes' {@code podIP}).
     */
    public enum Stack {
        /** IPv4 only. */
        IPV4,
        /** IPv4 first, IPv6 beside it. */
        DUAL,
        /** IPv6 only: no IPv4 address on the underlay, the nodes' links or the pods. */
        IPV6;

        /** Whether nodes, pods and Services have an IPv6 address. */
        public boolean hasIpv6() {
            return this != IPV4;
        }

        /** Whether nodes, pods and Services have an IPv4 address. */
        public boolean hasIpv4() {
            return this != IPV6;
        }
    }

    public ClusterSpec {
        requireNonNull(name, "name");
        requireNonNull(stack, "stack");
        requireNonNull(pods, "pods");
        if (!NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("cluster name '" + name
                    + "': use 1-8 lower-case letters or digits, starting with a letter");
        }
        if (nodes < 1 || nodes > 50) {
            throw new IllegalArgumentException("nodes: " + nodes + " is outside 1..50");
        }
        if (base < 10 || base > 252 || base % 2 != 0) {
            throw new IllegalArgumentException("base: " + base + " must be an even number in 10..252");
        }
        pods = List.copyOf(pods);
        Set<String> seen = new HashSet<>();
        int[] perNode = new int[nodes];
        for (PodSpec p : pods) {
            if (!POD.matcher(p.name()).matches()) {
                throw new IllegalArgumentException("pod name '" + p.name()
                        + "': use 1-16 lower-case letters, digits or '-', starting with a letter");
            }
            if (!seen.add(p.name())) {
                throw new IllegalArgumentException("pod '" + p.name() + "' is declared twice");
            }
            if (p.node() < 0 || p.node() >= nodes) {
                throw new IllegalArgumentException("pod '" + p.name() + "': node " + p.node() + " does not exist (0.."
                        + (nodes - 1) + ")");
            }
            if (++perNode[p.node()] > 200) {
                throw new IllegalArgumentException("node " + p.node() + " has more than 200 pods");
            }
        }
    }

    /** A pod: its Kubernetes-like identity and the node index it runs on. */
    public record PodSpec(String name, String namespace, String serviceAccount, int node, Map<String, String> labels) {
        public PodSpec {
            requireNonNull(name, "name");
            requireNonNull(namespace, "namespace");
            requireNonNull(serviceAccount, "serviceAccount");
            labels = Map.copyOf(requireNonNull(labels, "labels"));
        }

        /**
         * Whether its node agent captures it: not when labelled {@code istio.io/dataplane-mode: none},
         * Istio's opt-out, which a waypoint's pod carries (its 15008 is its own, not the agent's).
         */
        public boolean captured() {
            return !"none".equals(labels.get("istio.io/dataplane-mode"));
        }
    }

    public static Builder builder(String name) {
        return new Builder(name);
    }

    /** Builds a {@link ClusterSpec}; defaults: 2 nodes, base 200, no host link, IPv4 only. */
    public static final class Builder {
        private final String name;
        private int nodes = 2;
        private int base = 200;
        private boolean hostLink;
        private Stack stack = Stack.IPV4;
        private final List<PodSpec> pods = new ArrayList<>();

        private Builder(String name) {
            this.name = requireNonNull(name, "name");
        }

        public Builder nodes(int nodes) {
            this.nodes = nodes;
            return this;
        }

        public Builder base(int base) {
            this.base = base;
            return this;
        }

        public Builder hostLink(boolean hostLink) {
            this.hostLink = hostLink;
            return this;
        }

        public Builder stack(Stack stack) {
            this.stack = requireNonNull(stack, "stack");
            return this;
        }

        public Builder pod(String name, String namespace, String serviceAccount, int node) {
            return pod(new PodSpec(name, namespace, serviceAccount, node, Map.of("app", name)));
        }

        public Builder pod(PodSpec pod) {
            pods.add(requireNonNull(pod, "pod"));
            return this;
        }

        public ClusterSpec build() {
            return new ClusterSpec(name, nodes, pods, base, hostLink, stack);
        }
    }
}
