package dev.wisp.waypoint.proxy;

import dev.wisp.node.proxy.HboneServer;
import dev.wisp.node.proxy.HbonePool;
import dev.wisp.node.proxy.ProxyContext;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.waypoint.authz.ExtAuthzClient;
import dev.wisp.waypoint.route.RateLimits;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * The waypoint's data path: the agent's {@link HboneServer} (TLS 1.3 with a required client SVID,
 * ALPN h2, the same refusals and drain) presenting the waypoint's own SPIFFE ID, one
 * {@link WaypointStream} per CONNECT, and a {@link Forwarder} that sends each routed request over the
 * agent's {@link HbonePool} (owned by the caller) to the endpoint's node. Each answered request is
 * counted in {@link RequestMetrics} (the registry of {@code ctx}'s telemetry). CUSTOM policies' external
 * authorizers are called through one {@link ExtAuthzClient}, closed with the server.
 *
 * <p>Closing stops the listener and closes the connections; {@link #drain} lets open streams end
 * first (up to the drain timeout).
 */
public final class WaypointServer implements AutoCloseable {
    private final HboneServer server;
    private final ExtAuthzClient authorizers;

    public WaypointServer(ProxyContext ctx, HbonePool pool, SpiffeId identity, Supplier<EnvoyConfig> config,
            Duration drainTimeout, Duration upstreamIdle) {
        RequestMetrics metrics = new RequestMetrics(ctx.telemetry().registry());
        this.authorizers = new ExtAuthzClient(metrics::extAuthz);
        Routing routing = new Routing(config, new Forwarder(pool, identity, ctx.telemetry().registry(),
                upstreamIdle), metrics,
                new RateLimits(System::nanoTime), Optional.of(authorizers));
        this.server = new HboneServer(ctx, drainTimeout, identity, () -> new WaypointStream(routing));
    }

    /** Binds the HBONE listener; blocks until bound. */
    public InetSocketAddress bind(InetSocketAddress address) {
        return server.bind(address);
    }

    public void drain() {
        server.drain();
    }

    @Override
    public void close() {
        server.close();
        authorizers.close();
    }
}
