package dev.wisp.local;

import java.util.ArrayList;
import java.util.List;

/**
 * A cluster's link from the root network namespace to its underlay ({@link ClusterSpec#hostLink()}):
 * a veth named {@code wisp-C} with the underlay's {@code .1} address and routes to the nodes' pod
 * CIDRs, so that this host (a test, Prometheus, a browser) reaches nodes and pods. It is the only
 * part of a cluster in the root namespace, so it is where two clusters on one machine can clash:
 * one that would take an address block another cluster's link already has is refused.
 */
final class HostLink {
    private HostLink() {}

    /** The link's name in the root namespace. */
    static String name(String cluster) {
        return "wisp-" + cluster;
    }

    /** Adds the link between the root namespace and {@code underlay}'s bridge {@code br0}, with its routes. */
    static void add(ClusterSpec spec, String underlay, List<LocalCluster.Node> nodes) {
        String host = name(spec.name());
        boolean v4 = spec.stack().hasIpv4();
        boolean v6 = spec.stack().hasIpv6();
        String address = "10." + spec.base() + ".0.1";
        if (v4) {
            requireUnused(spec, address + "/24");
        }
        if (v6) {
            requireUnused(spec, AddressPlan.ipv6Of(address) + "/64");
        }
        Sh.run("ip", "link", "add", host, "type", "veth", "peer", "name", "host", "netns", underlay);
        if (v4) {
            Sh.run("ip", "addr", "add", address + "/24", "dev", host);
        }
        if (v6) {
            Sh.run("ip", "addr", "add", AddressPlan.ipv6Of(address) + "/64", "dev", host, "nodad");
        }
        Sh.run("ip", "link", "set", host, "up");
        Sh.run("ip", "netns", "exec", underlay, "ip", "link", "set", "host", "master", "br0", "up");
        for (LocalCluster.Node n : nodes) {
            if (v4) {
                Sh.run("ip", "route", "replace", n.podCidr(), "via", n.address(), "dev", host);
            }
            if (v6) {
                Sh.run("ip", "-6", "route", "replace", n.podCidr6(), "via", n.address6(), "dev", host);
            }
        }
    }

    /**
     * Two links on one prefix break each other's routes, and so the tests of both clusters, which run
     * side by side in the e2e suite: a clash is named instead.
     */
    private static void requireUnused(ClusterSpec spec, String prefix) {
        List<String> links = new ArrayList<>();
        for (String line : Sh.run("ip", "-o", "addr", "show", "to", prefix).split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length > 1) {
                links.add(f[1]);
            }
        }
        if (!links.isEmpty()) {
            throw new ClusterException("cluster " + spec.name() + ": its address base " + spec.base() + " (" + prefix
                    + ") is already on link " + String.join(", ", links) + " of this machine, another cluster's"
                    + " (or the host's own): give one of them another base (ClusterSpec.base, wisp cluster up --base)");
        }
    }

    /** Removes the link if it is there; a failure to remove it is returned. */
    static void remove(String cluster, List<RuntimeException> failures) {
        // Before the underlay namespace: deleting that removes the veth's peer, and with it this side,
        // asynchronously, which would race a later 'ip link del'.
        String host = name(cluster);
        if (Sh.tryRun(List.of("ip", "link", "show", host)).exit() == 0) {
            Sh.Result del = Sh.tryRun(List.of("ip", "link", "del", host));
            if (del.exit() != 0 && Sh.tryRun(List.of("ip", "link", "show", host)).exit() == 0) {
                failures.add(new ClusterException("'ip link del " + host + "' failed: " + del.err().strip()));
            }
        }
    }
}
