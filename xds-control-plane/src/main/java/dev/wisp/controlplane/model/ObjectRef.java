package dev.wisp.controlplane.model;

import static java.util.Objects.requireNonNull;

/**
 * Names one configuration object the way an operator does: its kind, namespace (empty for
 * cluster-scoped kinds such as {@code Node} and {@code MeshConfig}) and name.
 */
public record ObjectRef(String kind, String namespace, String name) {
    public ObjectRef {
        requireNonNull(kind, "kind");
        requireNonNull(namespace, "namespace");
        requireNonNull(name, "name");
    }

    /** {@code namespace/name}, or {@code name} for cluster-scoped objects. */
    public String qualifiedName() {
        return namespace.isEmpty() ? name : namespace + "/" + name;
    }

    @Override
    public String toString() {
        return kind + " " + qualifiedName();
    }
}
