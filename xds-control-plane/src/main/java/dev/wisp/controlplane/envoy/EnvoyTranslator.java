package dev.wisp.controlplane.envoy;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.Any;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.UInt32Value;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.model.Selectors;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.controlplane.model.ServiceDef.ServicePort;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.AggregatedConfigSource;
import io.envoyproxy.envoy.config.core.v3.ApiVersion;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.Endpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.listener.v3.ApiListener;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.http.router.v3.Router;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.Rds;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Translates the mesh model into Envoy v3 resources (pure: same model, same protos). Per service
 * port: an API listener named {@code <host>:<port>} whose HTTP connection manager takes its routes
 * by RDS over ADS (what a proxyless gRPC client resolves for {@code xds:///<host>:<port>}, and what the
 * waypoint reads for the same port); the route configuration of that name ({@link RouteTranslator});
 * an EDS cluster {@code outbound|<port>||<host>}, with the HTTP version its endpoints speak
 * ({@link UpstreamProtocol}: HTTP/1.1, HTTP/2, or what the client spoke); and its load assignment: the ready pods the
 * service selects, at the port's target port, each with the HBONE tunnel a waypoint takes to it.
 */
public final class EnvoyTranslator {
    private static final ConfigSource ADS = ConfigSource.newBuilder()
            .setAds(AggregatedConfigSource.getDefaultInstance())
            .setResourceApiVersion(ApiVersion.V3).build();
    private static final HttpFilter ROUTER = HttpFilter.newBuilder().setName("envoy.filters.http.router")
            .setTypedConfig(Any.pack(Router.getDefaultInstance())).build();
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);

    private EnvoyTranslator() {}

    public static EnvoyResources translate(MeshModel model) {
        requireNonNull(model, "model");
        String domain = model.mesh().clusterDomain();
        RouteTranslator routes = new RouteTranslator(model);
        AuthzTranslator authz = new AuthzTranslator(model);
        List<Listener> listeners = new ArrayList<>();
        List<RouteConfiguration> configs = new ArrayList<>();
        List<Cluster> clusters = new ArrayList<>();
        List<ClusterLoadAssignment> endpoints = new ArrayList<>();
        // A service selects ready pods of its own namespace: grouped once, not scanned per service.
        Map<String, List<Pod>> readyByNamespace = new HashMap<>();
        for (Pod p : model.all(Pod.class)) {
            if (p.ready()) {
                readyByNamespace.computeIfAbsent(p.ref().namespace(), k -> new ArrayList<>()).add(p);
            }
        }
        for (ServiceDef s : model.all(ServiceDef.class)) {
            List<Pod> selected = readyByNamespace.getOrDefault(s.ref().namespace(), List.of()).stream()
                    .filter(p -> Selectors.selects(s.selector(), p.labels()))
                    .toList();
            for (ServicePort port : s.ports()) {
                String name = EnvoyNames.listener(s, port.port(), domain);
                listeners.add(listener(name, authz.extAuthz(s)));
                configs.add(authz.attach(routes.routeConfiguration(s, port.port()), s));
                String cluster = EnvoyNames.cluster(s.ref().namespace(), s.ref().name(), port.port(), domain);
                clusters.add(edsCluster(cluster).toBuilder().putTypedExtensionProtocolOptions(UpstreamProtocol.OPTIONS,
                        UpstreamProtocol.of(port).options()).build());
                endpoints.add(assignment(cluster, selected, port, model));
            }
        }
        CustomAuthz.clusters(model, clusters, endpoints);
        return new EnvoyResources(listeners, configs, clusters, endpoints);
    }

    /** A cluster whose endpoints come by EDS over ADS, balanced round robin. */
    static Cluster edsCluster(String name) {
        return Cluster.newBuilder().setName(name)
                .setType(Cluster.DiscoveryType.EDS)
                .setEdsClusterConfig(Cluster.EdsClusterConfig.newBuilder().setEdsConfig(ADS))
                .setLbPolicy(Cluster.LbPolicy.ROUND_ROBIN)
                .setConnectTimeout(BackendActions.duration(CONNECT_TIMEOUT))
                .build();
    }

    /** The API listener of a service port; its filters {@code extAuthz} (when the port has one), then the router. */
    private static Listener listener(String name, Optional<HttpFilter> extAuthz) {
        HttpConnectionManager.Builder b = HttpConnectionManager.newBuilder()
                .setStatPrefix(name)
                .setRds(Rds.newBuilder().setRouteConfigName(name).setConfigSource(ADS));
        extAuthz.ifPresent(b::addHttpFilters);
        HttpConnectionManager hcm = b.addHttpFilters(ROUTER).build();
        return Listener.newBuilder().setName(name)
                .setApiListener(ApiListener.newBuilder().setApiListener(Any.pack(hcm)))
                .build();
    }

    private static ClusterLoadAssignment assignment(String cluster, List<Pod> pods, ServicePort port,
            MeshModel model) {
        // One locality of weight 1: proxyless gRPC ignores a locality without a weight.
        LocalityLbEndpoints.Builder locality = LocalityLbEndpoints.newBuilder()
                .setLoadBalancingWeight(UInt32Value.of(1));
        for (Pod p : pods) {
            // A named targetPort is each pod's own port of that name; a pod without one serves not.
            java.util.OptionalInt target = port.targetOn(p);
            if (target.isEmpty()) {
                continue;
            }
            int targetPort = target.getAsInt();
            Optional<Metadata> tunnel = tunnel(p, model);
            for (InetAddress ip : p.ips()) {
                LbEndpoint.Builder e = LbEndpoint.newBuilder().setEndpoint(Endpoint.newBuilder()
                        .setAddress(Address.newBuilder().setSocketAddress(SocketAddress.newBuilder()
                                .setAddress(ip.getHostAddress()).setPortValue(targetPort))));
                tunnel.ifPresent(e::setMetadata);
                locality.addLbEndpoints(e);
            }
        }
        ClusterLoadAssignment.Builder b = ClusterLoadAssignment.newBuilder().setClusterName(cluster);
        if (locality.getLbEndpointsCount() > 0) {
            b.addEndpoints(locality);
        }
        return b.build();
    }

    /**
     * How a waypoint reaches the pod: HBONE to its node's agent ({@link EnvoyNames#TUNNEL_METADATA}:
     * {@code address} = the node's first address and HBONE port, {@code node}, {@code identity} = the
     * pod's SPIFFE ID, and {@code workload} = its workload name, {@link Pod#workloadName}, which the
     * waypoint labels its request series with), the way Istio's endpoints carry their tunnel. None when the pod's node is
     * unknown or has no address: the waypoint then has no way to that endpoint and skips it.
     */
    private static Optional<Metadata> tunnel(Pod p, MeshModel model) {
        Optional<NodeDef> node = model.node(p.nodeName()).filter(n -> !n.addresses().isEmpty());
        return node.map(n -> {
            InetAddress a = n.addresses().getFirst();
            String host = a instanceof Inet6Address ? "[" + a.getHostAddress() + "]" : a.getHostAddress();
            Struct s = Struct.newBuilder()
                    .putFields("address", text(host + ":" + n.hbonePort()))
                    .putFields("node", text(n.ref().name()))
                    .putFields("workload", text(p.workloadName()))
                    .putFields("identity", text("spiffe://" + model.mesh().trustDomain() + "/ns/"
                            + p.ref().namespace() + "/sa/" + p.serviceAccount()))
                    .build();
            return Metadata.newBuilder().putFilterMetadata(EnvoyNames.TUNNEL_METADATA, s).build();
        });
    }

    private static Value text(String s) {
        return Value.newBuilder().setStringValue(s).build();
    }
}
