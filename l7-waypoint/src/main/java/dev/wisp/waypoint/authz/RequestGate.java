package dev.wisp.waypoint.authz;

import com.google.protobuf.Any;
import dev.wisp.waypoint.route.EnvoyRoutes;
import dev.wisp.waypoint.route.RouteActions;
import io.envoyproxy.envoy.config.rbac.v3.RBAC;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
import io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBACPerRoute;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;

/**
 * What a request passes before it is routed, in Envoy's filter order (Istio's CUSTOM → DENY → ALLOW):
 * the request's JWT ({@link JwtAuthenticator}, 401 when a token is there and not valid); then, when the
 * virtual host has CUSTOM policies ({@link #CUSTOM_FILTER}: their rules as RBAC shadow rules) and one
 * matches, the listener's external authorizer ({@link ExtAuthzClient}: its refusal's status and body, or
 * its header edits, which the later steps and the route see); then the DENY and ALLOW policies
 * ({@link WaypointAuthorizer}, 403), which see the verified token's principal and claims. The one call
 * {@code Exchange} makes.
 */
public final class RequestGate {
    /** The filter instance name of the virtual host's jwt_authn configuration. */
    public static final String JWT_FILTER = "wisp.authn.jwt";

    /** The virtual host's CUSTOM policies: an RBAC whose shadow rules pick the requests the authorizer decides. */
    public static final String CUSTOM_FILTER = "wisp.authz.custom";

    private RequestGate() {}

    /**
     * Why a request is answered here: the status, the policy or provider (or "-"), the reason for the log,
     * and the body (null: the reason).
     */
    public record Refusal(int status, String policy, String reason, String body) {
        public Refusal(int status, String policy, String reason) {
            this(status, policy, reason, null);
        }
    }

    /** The gate's answer: a refusal, or the request goes on with the authorizer's header edits (null: none). */
    public record Outcome(Optional<Refusal> refusal, ExtAuthzClient.Verdict.Allowed edits) {
        static final Outcome PASS = new Outcome(Optional.empty(), null);

        static Outcome refused(Refusal r) {
            return new Outcome(Optional.of(r), null);
        }
    }

    /** The check without an external authorizer (a CUSTOM policy's requests are then refused). */
    public static Optional<Refusal> check(VirtualHost host, AuthzRequest request) {
        return check(host, request, Optional.empty(), Instant.now()).join().refusal();
    }

    /**
     * The check, with {@code custom} the listener's external authorizer (empty when it has none);
     * completes at once unless the authorizer is asked, then on a gRPC thread.
     */
    public static CompletableFuture<Outcome> check(VirtualHost host, AuthzRequest request,
            Optional<ExtAuthzClient.Bound> custom) {
        return check(host, request, custom, Instant.now());
    }

    static CompletableFuture<Outcome> check(VirtualHost host, AuthzRequest request,
            Optional<ExtAuthzClient.Bound> custom, Instant now) {
        Any jwtConfig = host.getTypedPerFilterConfigMap().get(JWT_FILTER);
        AuthzRequest r = request;
        if (jwtConfig != null) {
            Optional<JwtAuthentication> config = FilterConfigs.unpack(jwtConfig, JwtAuthentication.class);
            if (config.isEmpty()) {
                return done(new Refusal(401, "-", "JWT configuration not understood (fail closed)"));
            }
            switch (JwtAuthenticator.authenticate(config.get(), request.http(), now)) {
                case JwtAuthenticator.Result.None n -> {
                    // no token: unauthenticated, as Istio lets it through to the policies
                }
                case JwtAuthenticator.Result.Rejected x -> {
                    return done(new Refusal(401, "-", x.reason()));
                }
                case JwtAuthenticator.Result.Verified v -> r = request.withAuthn(v.authn());
            }
        }
        Any customConfig = host.getTypedPerFilterConfigMap().get(CUSTOM_FILTER);
        if (customConfig == null) {
            return CompletableFuture.completedFuture(rbac(host, r, null));
        }
        Optional<RBAC> rules = FilterConfigs.unpack(customConfig, RBACPerRoute.class)
                .filter(p -> p.getRbac().hasShadowRules()).map(p -> p.getRbac().getShadowRules());
        if (rules.isEmpty() || custom.isEmpty()
                || !rules.get().getPoliciesMap().values().stream().allMatch(RbacMatch::supported)) {
            return done(new Refusal(403, "-", "CUSTOM authorization configuration not understood or without an "
                    + "authorizer (fail closed)"));
        }
        AuthzRequest asked = r;
        Optional<String> matched = new TreeMap<>(rules.get().getPoliciesMap()).entrySet().stream()
                .filter(e -> RbacMatch.matches(e.getValue(), asked)).map(Map.Entry::getKey).findFirst();
        if (matched.isEmpty()) {
            return CompletableFuture.completedFuture(rbac(host, r, null));
        }
        String provider = custom.get().provider();
        return custom.get().check(asked).thenApply(v -> switch (v) {
            case ExtAuthzClient.Verdict.Denied d -> Outcome.refused(new Refusal(d.status(), provider, d.reason()
                    + " (CUSTOM policy " + matched.get() + ")", d.body()));
            case ExtAuthzClient.Verdict.Allowed a -> rbac(host, edited(asked, a), a);
        });
    }

    /** The DENY and ALLOW policies' decision on {@code r}, the request going on with {@code edits}. */
    private static Outcome rbac(VirtualHost host, AuthzRequest r, ExtAuthzClient.Verdict.Allowed edits) {
        if (WaypointAuthorizer.check(host, r) instanceof WaypointAuthorizer.Verdict.Denied d) {
            return Outcome.refused(new Refusal(403, d.policy(), d.reason()));
        }
        return new Outcome(Optional.empty(), edits);
    }

    /** {@code r} with the authorizer's header edits. */
    private static AuthzRequest edited(AuthzRequest r, ExtAuthzClient.Verdict.Allowed a) {
        Map<String, List<String>> h = new LinkedHashMap<>();
        r.http().headers().forEach((k, v) -> h.put(k, new ArrayList<>(v)));
        a.applyTo(new RouteActions.Headers((k, v) -> h.put(k, new ArrayList<>(List.of(v))),
                (k, v) -> h.computeIfAbsent(k, x -> new ArrayList<>()).add(v), h::remove, h::containsKey));
        return new AuthzRequest(new EnvoyRoutes.Request(r.http().method(), r.http().path(), r.http().query(), h),
                r.peer(), r.source(), r.destination(), r.authn());
    }

    private static CompletableFuture<Outcome> done(Refusal r) {
        return CompletableFuture.completedFuture(Outcome.refused(r));
    }
}
