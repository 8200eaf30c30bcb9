package dev.wisp.controlplane.xds;

import java.net.InetAddress;
import java.util.List;
import java.util.Optional;

/**
 * What the live configuration says about a node whose credential authenticated: whether it is
 * still part of the mesh and which addresses its {@code Node} object declares (the addresses its
 * agent connects from). Read on gRPC threads at every call; implementations read a volatile model.
 */
public interface NodeDirectory {
    /** A directory with nothing to check against (no configuration read yet): every node passes. */
    NodeDirectory NONE = new NodeDirectory() {
        @Override
        public boolean loaded() {
            return false;
        }

        @Override
        public Optional<List<InetAddress>> addresses(String node) {
            return Optional.empty();
        }
    };

    /** Whether a valid configuration was read; before that there is nothing to check a node against. */
    boolean loaded();

    /** The node's declared addresses (possibly none), or empty when the configuration has no such node. */
    Optional<List<InetAddress>> addresses(String node);

    /**
     * Whether {@code ip} lies in one of the pod CIDRs the node's {@code Node} object declares: a pod on
     * that node (the local mesh's waypoint, for one, calls with its node's credential from its pod
     * address). None by default.
     */
    default boolean inPodCidrs(String node, InetAddress ip) {
        return false;
    }
}
