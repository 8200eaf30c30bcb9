package dev.wisp.controlplane.model;

import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.Filter;
import dev.wisp.controlplane.model.RouteParts.ParentRef;
import dev.wisp.controlplane.model.RouteParts.PathMatch;
import dev.wisp.controlplane.model.RouteParts.Retry;
import dev.wisp.controlplane.model.RouteParts.StringMatch;
import dev.wisp.controlplane.model.RouteParts.Timeouts;
import java.time.Instant;
import java.util.List;

/**
 * A {@code gateway.networking.k8s.io/v1 HTTPRoute} attached to services (GAMMA).
 *
 * @param created {@code metadata.creationTimestamp}, or null when the source has none (the YAML
 *        directory usually): precedence then falls through to namespace/name
 */
public record HttpRoute(ObjectRef ref, Instant created, List<ParentRef> parents, List<String> hostnames,
        List<Rule> rules) implements MeshObject, RouteParts.ServiceRoute<HttpRoute.Rule> {
    public static final String KIND = "HTTPRoute";

    /** {@code rules[]}; {@code matches} is never empty (the default is one PathPrefix {@code /}). */
    public record Rule(List<Match> matches, List<Filter> filters, List<BackendRef> backends, Timeouts timeouts,
            Retry retry) implements RouteParts.RouteRule<Match> {}

    /**
     * {@code matches[]}: every condition present must hold.
     *
     * @param method upper-case, or null for any
     */
    public record Match(PathMatch path, List<StringMatch> headers, List<StringMatch> query, String method) {}
}
