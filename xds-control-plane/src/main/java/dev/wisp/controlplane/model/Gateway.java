package dev.wisp.controlplane.model;

import java.net.InetAddress;
import java.util.List;
import java.util.Map;

/**
 * A {@code gateway.networking.k8s.io/v1 Gateway}, as far as the mesh reads it: its class, listeners,
 * requested addresses and labels. Whether it declares a waypoint is decided from these fields by
 * {@link WaypointNames#declaresWaypoint}, so that every configuration source only copies fields.
 *
 * @param addresses {@code spec.addresses[]} of type {@code IPAddress}
 */
public record Gateway(ObjectRef ref, String className, List<Listener> listeners, List<InetAddress> addresses,
        Map<String, String> labels) implements MeshObject {
    public static final String KIND = "Gateway";

    /** {@code spec.listeners[]}. */
    public record Listener(String name, int port, String protocol) {}
}
