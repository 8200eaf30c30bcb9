package dev.wisp.controlplane.model;

import java.net.InetAddress;
import java.util.List;

/**
 * A node: core {@code v1 Node} ({@code status.addresses} of type InternalIP, {@code spec.podCIDRs})
 * plus the agent's HBONE port and WireGuard key, which Wisp reads from annotations as Cilium does.
 */
public record NodeDef(ObjectRef ref, List<InetAddress> addresses, int hbonePort, String wireguardPublicKey,
        String wireguardEndpoint, List<String> podCidrs) implements MeshObject {
    public static final String KIND = "Node";
    public static final String HBONE_PORT_ANNOTATION = "wisp.dev/hbone-port";
    public static final String WIREGUARD_KEY_ANNOTATION = "wisp.dev/wireguard-public-key";
    public static final String WIREGUARD_ENDPOINT_ANNOTATION = "wisp.dev/wireguard-endpoint";
}
