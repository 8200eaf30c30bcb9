package dev.wisp.waypoint.authz;

import com.google.protobuf.Any;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication;
import java.time.Instant;
import java.util.Optional;

/**
 * What a request passes before it is routed, in Envoy's filter order: the request's JWT
 * ({@link JwtAuthenticator}, 401 when a token is there and not valid), then the virtual host's
 * authorization policies ({@link WaypointAuthorizer}, 403), which see the verified token's principal and
 * claims. The one call {@code Exchange} makes; empty when the request goes on.
 */
public final class RequestGate {
    /** The filter instance name of the virtual host's jwt_authn configuration. */
    public static final String JWT_FILTER = "wisp.authn.jwt";

    private RequestGate() {}

    /** Why a request is answered here: the status, the policy or provider (or "-") and the reason for the log. */
    public record Refusal(int status, String policy, String reason) {}

    public static Optional<Refusal> check(VirtualHost host, AuthzRequest request) {
        return check(host, request, Instant.now());
    }

    static Optional<Refusal> check(VirtualHost host, AuthzRequest request, Instant now) {
        Any jwtConfig = host.getTypedPerFilterConfigMap().get(JWT_FILTER);
        AuthzRequest r = request;
        if (jwtConfig != null) {
            Optional<JwtAuthentication> config = FilterConfigs.unpack(jwtConfig, JwtAuthentication.class);
            if (config.isEmpty()) {
                return Optional.of(new Refusal(401, "-", "JWT configuration not understood (fail closed)"));
            }
            switch (JwtAuthenticator.authenticate(config.get(), request.http(), now)) {
                case JwtAuthenticator.Result.None n -> {
                    // no token: unauthenticated, as Istio lets it through to the policies
                }
                case JwtAuthenticator.Result.Rejected x -> {
                    return Optional.of(new Refusal(401, "-", x.reason()));
                }
                case JwtAuthenticator.Result.Verified v -> r = request.withAuthn(v.authn());
            }
        }
        if (WaypointAuthorizer.check(host, r) instanceof WaypointAuthorizer.Verdict.Denied d) {
            return Optional.of(new Refusal(403, d.policy(), d.reason()));
        }
        return Optional.empty();
    }
}
