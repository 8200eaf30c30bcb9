package dev.wisp.waypoint.authz;

import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import java.util.Optional;

/**
 * What a request passes before it is routed: the virtual host's authorization policies
 * ({@link WaypointAuthorizer}). The one call {@code Exchange} makes; empty when the request goes on.
 */
public final class RequestGate {
    private RequestGate() {}

    /** Why a request is answered here: the status, the policy (or "-") and the reason for the log. */
    public record Refusal(int status, String policy, String reason) {}

    public static Optional<Refusal> check(VirtualHost host, AuthzRequest request) {
        if (WaypointAuthorizer.check(host, request) instanceof WaypointAuthorizer.Verdict.Denied d) {
            return Optional.of(new Refusal(403, d.policy(), d.reason()));
        }
        return Optional.empty();
    }
}
