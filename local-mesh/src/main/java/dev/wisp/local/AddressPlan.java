package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import java.util.List;

/**
 * A local cluster's addresses, as a pure function of its base and {@link ClusterSpec.Stack}: the
 * underlay {@code 10.B.0.0/24} (host side .1, bridge .2, node i at {@code .(11+i)}), node i's pods
 * {@code 10.(B+1).i.0/24} (gateway .1, pods from .10), the Services {@code 10.(B+1).250.i}; and each
 * one's IPv6 twin {@code fd00:X:Y::Z} ({@link #ipv6Of}, the same digits). A plan's <em>primary</em>
 * address is the IPv4 one unless the cluster is IPv6-only, where it is the twin: what
 * {@code Pod.ip()}, {@code Node.address()} and the like return, and what a mesh binds and dials.
 *
 * @param stack the cluster's IP families
 * @param base the second octet of the plan (the pods' is {@code base + 1})
 */
public record AddressPlan(ClusterSpec.Stack stack, int base) {
    public AddressPlan {
        requireNonNull(stack, "stack");
    }

    /** The plan of {@code spec}. */
    public static AddressPlan of(ClusterSpec spec) {
        return new AddressPlan(spec.stack(), spec.base());
    }

    /**
     * The IPv6 twin of a cluster address {@code 10.X.Y.Z}: {@code fd00:X:Y::Z} (the same digits, so a
     * reader matches them up), on the same link: {@code 10.X.0.Z} is {@code fd00:X::Z}.
     */
    public static String ipv6Of(String ipv4) {
        String[] o = ipv4.split("\\.");
        // RFC 5952's form (a zero group is folded into the "::"), as `ip` prints it.
        return "fd00:" + o[1] + (o[2].equals("0") ? "" : ":" + o[2]) + "::" + o[3];
    }

    /** {@code address:port}, an IPv6 address in brackets ({@code [fd00:220::2]:15012}). */
    public static String hostPort(String address, int port) {
        return (address.indexOf(':') >= 0 ? "[" + address + "]" : address) + ":" + port;
    }

    /** Plan address {@code ipv4} ({@code 10.X.Y.Z}) as this cluster has it: its twin when IPv6-only. */
    String primary(String ipv4) {
        return stack.hasIpv4() ? ipv4 : ipv6Of(ipv4);
    }

    /** Loopback as a cluster of this stack's processes reach it: {@code ::1} when IPv6-only, else {@code 127.0.0.1}. */
    public String loopback() {
        return stack.hasIpv4() ? "127.0.0.1" : "::1";
    }

    /** The underlay bridge's primary address (where a control plane listens). */
    public String underlay() {
        return primary("10." + base + ".0.2");
    }

    /** The host link's IPv4 address (the host side of the underlay). */
    String hostLink() {
        return "10." + base + ".0.1";
    }

    /** Node {@code i}'s primary underlay address. */
    String node(int i) {
        return primary("10." + base + ".0." + (11 + i));
    }

    /** Node {@code i}'s pods' gateway on its {@code cni0}, primary family. */
    String podGateway(int i) {
        return primary("10." + (base + 1) + "." + i + ".1");
    }

    /** Node {@code i}'s pod CIDR, primary family ({@code 10.(B+1).i.0/24} or {@code fd00:(B+1):i::/64}). */
    String podCidr(int i) {
        return stack.hasIpv4()
                ? "10." + (base + 1) + "." + i + ".0/24"
                : podGateway(i).replaceFirst("::1$", "::")
                        + "/64";
    }

    /** The primary address of node {@code i}'s pod number {@code host} (10..250). */
    String pod(int i, int host) {
        return primary("10." + (base + 1) + "." + i + "." + host);
    }

    /** {@code 10.(B+1).250.i} (or its twin when IPv6-only): a Service's clusterIP that no pod or node uses. */
    String service(int i) {
        if (i < 1 || i > 254) {
            throw new IllegalArgumentException("service address index " + i + " is outside 1..254");
        }
        return primary("10." + (base + 1) + ".250." + i);
    }

    /** The IPv6 VIP of the Service whose primary clusterIP is {@code clusterIp}: its twin, or itself when IPv6. */
    static String ipv6Twin(String clusterIp) {
        return clusterIp.indexOf(':') >= 0 ? clusterIp : ipv6Of(clusterIp);
    }

    /**
     * The addresses of an object whose primary address is {@code primary}, as the control plane is told
     * them: IPv4 then IPv6 in a dual-stack cluster, else the primary one alone.
     */
    List<String> listed(String primary) {
        return stack == ClusterSpec.Stack.DUAL ? List.of(primary, ipv6Twin(primary)) : List.of(primary);
    }

    /** The cluster-wide CIDRs of the pods: {@code 10.(B+1).0.0/16} and/or {@code fd00:(B+1)::/32}. */
    List<String> podsCidrs() {
        String v4 = "10." + (base + 1) + ".0.0/16";
        String v6 = "fd00:" + (base + 1) + "::/32";
        return switch (stack) {
            case IPV4 -> List.of(v4);
            case DUAL -> List.of(v4, v6);
            case IPV6 -> List.of(v6);
        };
    }
}
