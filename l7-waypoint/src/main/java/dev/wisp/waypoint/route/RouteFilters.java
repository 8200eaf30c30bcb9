package dev.wisp.waypoint.route;

import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault;
import io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The per-route filter configurations the waypoint applies ({@link Faults}, {@link RateLimits}),
 * unpacked from their {@code Any} once per configuration rather than on every request: {@link #table}
 * walks every route of a configuration the first time it is asked about it and keeps the result until
 * another configuration (another object) is asked about.
 *
 * <p>Thread-safe: the table of now is published through a volatile field; two threads that see a new
 * configuration at once may each build it (the same result).
 */
public final class RouteFilters {
    /**
     * A route's filters, unpacked.
     *
     * @param fault its {@value Faults#FILTER} configuration, or null
     * @param rateLimit its {@value RateLimits#FILTER} configuration, or null
     */
    public record Resolved(HTTPFault fault, LocalRateLimit rateLimit) {
        public static final Resolved NONE = new Resolved(null, null);

        /** {@code route}'s filters, unpacked now. */
        public static Resolved of(Route route) {
            HTTPFault f = RouteActions.perFilter(route, Faults.FILTER, HTTPFault.class);
            LocalRateLimit l = RouteActions.perFilter(route, RateLimits.FILTER, LocalRateLimit.class);
            return f == null && l == null ? NONE : new Resolved(f, l);
        }
    }

    /** The routes of one configuration, each with its filters (by identity: the config's own objects). */
    public static final class Table {
        private final Map<Route, Resolved> byRoute = new IdentityHashMap<>();

        Table(Collection<RouteConfiguration> configs) {
            for (RouteConfiguration rc : configs) {
                for (VirtualHost vh : rc.getVirtualHostsList()) {
                    for (Route r : vh.getRoutesList()) {
                        byRoute.put(r, Resolved.of(r));
                    }
                }
            }
        }

        /** {@code route}'s filters: from the table, or unpacked now for a route outside it. */
        public Resolved of(Route route) {
            Resolved r = byRoute.get(route);
            return r != null ? r : Resolved.of(route);
        }
    }

    private record Current(Object config, Table table) {}

    private volatile Current current = new Current(new Object(), new Table(java.util.List.of()));

    /** The table of {@code config} (any object standing for one configuration version) and its {@code routes}. */
    public Table table(Object config, Collection<RouteConfiguration> routes) {
        Current c = current;
        if (c.config() != config) {
            c = new Current(config, new Table(routes));
            current = c;
        }
        return c.table();
    }
}
