package dev.wisp.waypoint.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.waypoint.authz.ExtAuthzClient;
import dev.wisp.waypoint.route.RateLimits;
import dev.wisp.waypoint.route.RouteFilters;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * What every request a waypoint answers is routed, sent and counted with: the route configuration of
 * now (read again per request), the upstream {@link Forwarder}, the Istio request series and the client
 * of external authorizers. One per {@link WaypointServer}, handed to each {@link WaypointStream} and each
 * {@link Exchange}.
 *
 * @param forwarder null in tests whose requests never leave the waypoint
 * @param rateLimits the routes' token buckets, shared by every connection of the waypoint
 * @param filters the routes' fault and rate limit configurations, unpacked once per configuration
 * @param authorizers empty in tests that call no external authorizer (a CUSTOM policy's requests are then refused)
 */
record Routing(Supplier<EnvoyConfig> config, Forwarder forwarder, RequestMetrics metrics, RateLimits rateLimits,
        Optional<ExtAuthzClient> authorizers, RouteFilters filters) {
    Routing {
        requireNonNull(config, "config");
        requireNonNull(metrics, "metrics");
        requireNonNull(rateLimits, "rateLimits");
        requireNonNull(authorizers, "authorizers");
        requireNonNull(filters, "filters");
    }

    /** With the routes' filters unpacked once per configuration. */
    Routing(Supplier<EnvoyConfig> config, Forwarder forwarder, RequestMetrics metrics, RateLimits rateLimits,
            Optional<ExtAuthzClient> authorizers) {
        this(config, forwarder, metrics, rateLimits, authorizers, new RouteFilters());
    }

    /** With buckets on the system's monotonic clock and no external authorizer. */
    Routing(Supplier<EnvoyConfig> config, Forwarder forwarder, RequestMetrics metrics) {
        this(config, forwarder, metrics, new RateLimits(System::nanoTime), Optional.empty());
    }
}
