package dev.wisp.controlplane.model;

import java.time.Duration;

/**
 * A {@code wisp.dev/v1alpha1 LocalRateLimit}: a token bucket for the route rules that name it in an
 * {@code ExtensionRef} filter. Served to the waypoint as Envoy's
 * {@code envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit} on the rule's routes; the
 * waypoint keeps one bucket per rule (all its matches) and answers 429 once it is empty.
 *
 * @param tokens the bucket's size, and what it holds at first
 * @param tokensPerFill how many tokens come back each {@code fillInterval} (1 when absent, as in Envoy)
 * @param fillInterval at least 50 ms
 */
public record LocalRateLimit(ObjectRef ref, int tokens, int tokensPerFill, Duration fillInterval)
        implements
            MeshObject {
    public static final String KIND = "LocalRateLimit";
}
