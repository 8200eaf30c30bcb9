package dev.wisp.waypoint.xds;

import static java.util.Objects.requireNonNull;

import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * What the waypoint holds from the control plane's Envoy xDS, immutable: the route configurations
 * (RDS) by name, the cluster names (CDS) and the HTTP version each speaks to its endpoints, the load
 * assignments (EDS) by cluster, and the external authorizers of the listeners (LDS). A new value is
 * published whole after each accepted response, so a request sees one consistent set.
 *
 * @param routes route configurations by name ({@code <host>:<port>})
 * @param clusters the names of the clusters CDS declared
 * @param endpoints load assignments by cluster name
 * @param authorizers the {@code envoy.filters.http.ext_authz} filter of the listener whose HTTP connection
 *            manager takes that route configuration, by route configuration name (absent: none)
 * @param upstreamHttp2 by cluster name, whether its endpoints are spoken to in HTTP/2 ({@code true}) or
 *            HTTP/1.1 ({@code false}), as the cluster's {@code HttpProtocolOptions} say; a cluster absent
 *            here speaks what the client spoke
 */
public record EnvoyConfig(Map<String, RouteConfiguration> routes, Set<String> clusters,
        Map<String, ClusterLoadAssignment> endpoints, Map<String, ExtAuthz> authorizers,
        Map<String, Boolean> upstreamHttp2) {
    public static final EnvoyConfig EMPTY = new EnvoyConfig(Map.of(), Set.of(), Map.of());

    public EnvoyConfig {
        routes = Map.copyOf(routes);
        clusters = Set.copyOf(clusters);
        endpoints = Map.copyOf(endpoints);
        authorizers = Map.copyOf(authorizers);
        upstreamHttp2 = Map.copyOf(upstreamHttp2);
    }

    /** A configuration whose clusters speak what the client spoke. */
    public EnvoyConfig(Map<String, RouteConfiguration> routes, Set<String> clusters,
            Map<String, ClusterLoadAssignment> endpoints, Map<String, ExtAuthz> authorizers) {
        this(routes, clusters, endpoints, authorizers, Map.of());
    }

    /** A configuration whose listeners call no external authorizer. */
    public EnvoyConfig(Map<String, RouteConfiguration> routes, Set<String> clusters,
            Map<String, ClusterLoadAssignment> endpoints) {
        this(routes, clusters, endpoints, Map.of());
    }

    /**
     * Whether a request to {@code cluster} goes upstream as HTTP/2: as the cluster says, else as the client
     * spoke ({@code clientHttp2}).
     */
    public boolean upstreamHttp2(String cluster, boolean clientHttp2) {
        return upstreamHttp2.getOrDefault(cluster, clientHttp2);
    }

    /**
     * The virtual host that serves connections to {@code target}, the original destination a CONNECT
     * names (a service's cluster IP and port): the one whose domains list {@code ip:port}, as Envoy
     * selects a virtual host by authority. Empty when no route configuration covers it.
     */
    public Optional<VirtualHost> virtualHost(InetSocketAddress target) {
        return served(target).map(Map.Entry::getValue);
    }

    /** The ext_authz filter of the listener serving {@code target}; empty when it calls no authorizer. */
    public Optional<ExtAuthz> authorizer(InetSocketAddress target) {
        return served(target).map(e -> authorizers.get(e.getKey()));
    }

    /** The route configuration's name and the virtual host serving {@code target}. */
    private Optional<Map.Entry<String, VirtualHost>> served(InetSocketAddress target) {
        requireNonNull(target, "target");
        String ip = target.getAddress().getHostAddress();
        String authority = (target.getAddress() instanceof Inet6Address ? "[" + ip + "]" : ip) + ":"
                + target.getPort();
        for (RouteConfiguration rc : routes.values()) {
            for (VirtualHost vh : rc.getVirtualHostsList()) {
                if (vh.getDomainsList().contains(authority)) {
                    return Optional.of(Map.entry(rc.getName(), vh));
                }
            }
        }
        return Optional.empty();
    }
}
