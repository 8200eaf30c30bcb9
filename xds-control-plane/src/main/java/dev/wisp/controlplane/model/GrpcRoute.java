package dev.wisp.controlplane.model;

import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.Filter;
import dev.wisp.controlplane.model.RouteParts.MatchType;
import dev.wisp.controlplane.model.RouteParts.ParentRef;
import dev.wisp.controlplane.model.RouteParts.StringMatch;
import java.time.Instant;
import java.util.List;

/**
 * A {@code gateway.networking.k8s.io/v1 GRPCRoute} attached to services (GAMMA). Its rules are
 * matched on their own, never merged with HTTPRoutes.
 *
 * @param created {@code metadata.creationTimestamp}, or null
 */
public record GrpcRoute(ObjectRef ref, Instant created, List<ParentRef> parents, List<String> hostnames,
        List<Rule> rules) implements MeshObject, RouteParts.ServiceRoute<GrpcRoute.Rule> {
    public static final String KIND = "GRPCRoute";

    /** {@code rules[]}; {@code matches} is never empty (the default matches every call). */
    public record Rule(List<Match> matches, List<Filter> filters, List<BackendRef> backends)
            implements
                RouteParts.RouteRule<Match> {}

    /**
     * {@code matches[]}: {@code method.service} and {@code method.method} (either may be null = any)
     * and headers.
     */
    public record Match(MatchType type, String service, String method, List<StringMatch> headers) {
        public static final Match ANY = new Match(MatchType.EXACT, null, null, List.of());
    }
}
