package dev.wisp.controlplane.model;

import java.util.Map;

/**
 * A namespace: core {@code v1 Namespace}; the mesh reads only its labels (a namespace-wide
 * {@code istio.io/use-waypoint}). Cluster-scoped: its reference has an empty namespace.
 */
public record Namespace(ObjectRef ref, Map<String, String> labels) implements MeshObject {
    public static final String KIND = "Namespace";
}
