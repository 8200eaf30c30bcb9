package dev.wisp.controlplane.model;

/** The declared {@link MeshConfig} object, as it appears in the configuration. */
public record MeshConfigObject(ObjectRef ref, MeshConfig config) implements MeshObject {}
