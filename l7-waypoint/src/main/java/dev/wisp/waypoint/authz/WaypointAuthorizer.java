package dev.wisp.waypoint.authz;

import com.google.protobuf.Any;
import io.envoyproxy.envoy.config.rbac.v3.RBAC;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBACPerRoute;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The AuthorizationPolicies of a virtual host, decided for one request (pure), in Istio's order: a
 * matching DENY policy refuses; then, when ALLOW policies exist, one must match. The control plane
 * puts them in the virtual host's {@code typed_per_filter_config} as Envoy {@link RBACPerRoute} under
 * {@link #DENY_FILTER} and {@link #ALLOW_FILTER} ({@code envoy.AuthzTranslator}); policies are tried in
 * name order, so the one named in a refusal is always the same. A configuration this waypoint does not
 * read whole (an unknown type, a matcher {@link RbacMatch} lacks, a CEL condition) refuses every
 * request of the virtual host: fail closed, never allow what a policy might deny.
 */
public final class WaypointAuthorizer {
    public static final String DENY_FILTER = "wisp.authz.deny";

    public static final String ALLOW_FILTER = "wisp.authz.allow";

    /** The metadata namespace of a request's verified JWT, as Istio names it. */
    public static final String AUTHN_FILTER = "istio_authn";

    private WaypointAuthorizer() {}

    /** The outcome: allowed (by the named ALLOW policy, or null when none applies) or denied (403). */
    public sealed interface Verdict {
        record Allowed(String policy) implements Verdict {}

        record Denied(String policy, String reason) implements Verdict {}
    }

    public static Verdict check(VirtualHost host, AuthzRequest r) {
        Map<String, Any> filters = host.getTypedPerFilterConfigMap();
        Optional<RBAC> deny = rules(filters.get(DENY_FILTER));
        Optional<RBAC> allow = rules(filters.get(ALLOW_FILTER));
        if (filters.containsKey(DENY_FILTER) && !usable(deny, RBAC.Action.DENY)
                || filters.containsKey(ALLOW_FILTER) && !usable(allow, RBAC.Action.ALLOW)) {
            return new Verdict.Denied("-", "authorization configuration not understood (fail closed)");
        }
        if (deny.isPresent()) {
            for (var e : new TreeMap<>(deny.get().getPoliciesMap()).entrySet()) {
                if (RbacMatch.matches(e.getValue(), r)) {
                    return new Verdict.Denied(e.getKey(), "RBAC: denied by DENY policy " + e.getKey());
                }
            }
        }
        if (allow.isEmpty()) {
            return new Verdict.Allowed(null);
        }
        for (var e : new TreeMap<>(allow.get().getPoliciesMap()).entrySet()) {
            if (RbacMatch.matches(e.getValue(), r)) {
                return new Verdict.Allowed(e.getKey());
            }
        }
        return new Verdict.Denied("-", "RBAC: no ALLOW policy matched");
    }

    private static boolean usable(Optional<RBAC> rbac, RBAC.Action action) {
        return rbac.isPresent() && rbac.get().getAction() == action
                && rbac.get().getPoliciesMap().values().stream().allMatch(RbacMatch::supported);
    }

    /** The RBAC rules in an (optional-wrapped) {@link RBACPerRoute}; empty when absent or unreadable. */
    private static Optional<RBAC> rules(Any config) {
        return FilterConfigs.unpack(config, RBACPerRoute.class).filter(p -> p.getRbac().hasRules())
                .map(p -> p.getRbac().getRules());
    }
}
