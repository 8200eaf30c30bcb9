package dev.wisp.waypoint.authz;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.waypoint.route.EnvoyRoutes;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A request as the waypoint's authorization sees it, every part verified or the waypoint's own view.
 *
 * @param http method, path (no query), query and lower-case headers, as routing sees them
 * @param peer the client's SPIFFE ID, from the certificate the waypoint's TLS verified (empty: none)
 * @param source the client's address: the TCP peer of the tunnel (the waypoint holds no workload
 *            state that could back a {@code forwarded} claim, see {@code SourceAddress} in the agent)
 * @param destination the tunnel's CONNECT target (the service's cluster IP and port)
 * @param authn what the request's verified JWT says, by metadata path under {@code istio_authn}:
 *            {@code [request.auth.principal]}, {@code [request.auth.audiences]},
 *            {@code [request.auth.presenter]}, {@code [request.auth.claims, name, …]}; empty without one
 */
public record AuthzRequest(EnvoyRoutes.Request http, Optional<SpiffeId> peer, InetAddress source,
        InetSocketAddress destination, Map<List<String>, List<String>> authn) {
    public AuthzRequest {
        requireNonNull(http, "http");
        requireNonNull(peer, "peer");
        requireNonNull(source, "source");
        requireNonNull(destination, "destination");
        authn = Map.copyOf(authn);
    }

    /** The same request with the verified token's {@code authn} metadata. */
    public AuthzRequest withAuthn(Map<List<String>, List<String>> verified) {
        return new AuthzRequest(http, peer, source, destination, verified);
    }
}
