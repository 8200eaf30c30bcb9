package dev.wisp.controlplane.model;

/**
 * One entry of a policy's {@code spec.targetRef(s)}: the waypoint {@code Gateway}
 * ({@code gateway.networking.k8s.io}) or a {@code Service} (core group) the policy attaches to, in the
 * policy's own namespace. A waypoint enforces it; node agents ignore policies attached this way.
 */
public record TargetRef(Kind kind, String name) {
    public enum Kind {
        GATEWAY, SERVICE
    }
}
