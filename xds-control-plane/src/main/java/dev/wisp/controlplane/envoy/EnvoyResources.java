package dev.wisp.controlplane.envoy;

import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import java.util.List;

/**
 * The Envoy v3 resources of one model (immutable lists of immutable protos), in the model's stable
 * order: one listener, route configuration, cluster and load assignment per service port.
 */
public record EnvoyResources(List<Listener> listeners, List<RouteConfiguration> routes, List<Cluster> clusters,
        List<ClusterLoadAssignment> endpoints) {
    public EnvoyResources {
        listeners = List.copyOf(listeners);
        routes = List.copyOf(routes);
        clusters = List.copyOf(clusters);
        endpoints = List.copyOf(endpoints);
    }

    /** These resources as a java-control-plane snapshot, every type at {@code version}. */
    public Snapshot snapshot(String version) {
        return Snapshot.create(clusters, endpoints, listeners, routes, List.of(), version);
    }
}
