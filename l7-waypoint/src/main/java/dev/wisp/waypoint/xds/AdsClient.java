package dev.wisp.waypoint.xds;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.wisp.base.Backoff;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.CallCredentials;
import io.grpc.Channel;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The waypoint's Envoy xDS client: one state-of-the-world ADS stream to the control plane, as Envoy
 * follows it: listeners and clusters by wildcard, then the route configurations the listeners' HTTP
 * connection managers name (RDS) and the load assignments of the clusters (EDS). Every response is
 * decoded whole; a response that does not decode is NACKed (the previous resources stay) and one that
 * does is ACKed and published as a new {@link EnvoyConfig}.
 *
 * <p>Threads: gRPC's callbacks for one stream are serialized; the state is guarded by {@code this}.
 * A broken stream is retried after {@link #RECONNECT} (500 ms doubling to 30 s, ±20 %) on a virtual
 * thread, keeping what was received. {@link #close} cancels the stream and stops retrying.
 */
public final class AdsClient implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(AdsClient.class);
    public static final Backoff RECONNECT = new Backoff(Duration.ofMillis(500), Duration.ofSeconds(30), 0.2);
    static final String LDS = "type.googleapis.com/envoy.config.listener.v3.Listener";
    static final String RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    static final String CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    static final String EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

    private final AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceStub stub;
    private final Node node;
    private final Consumer<EnvoyConfig> published;
    private final AtomicReference<EnvoyConfig> current = new AtomicReference<>(EnvoyConfig.EMPTY);
    /** Guarded by {@code this}. */
    private StreamObserver<DiscoveryRequest> requests;
    private final Map<String, String> acked = new HashMap<>();
    private final Map<String, String> nonces = new HashMap<>();
    private Set<String> routeNames = Set.of();
    private Set<String> clusterNames = Set.of();
    private Map<String, RouteConfiguration> routes = Map.of();
    private Map<String, ClusterLoadAssignment> endpoints = Map.of();
    private int failures;
    private boolean closed;

    /**
     * @param channel the control plane's TLS channel (the caller owns it)
     * @param credentials the node credential the control plane checks on every call
     * @param nodeId this client's Envoy node id (the control plane keeps its ACKs under it)
     * @param published called with each new configuration, on a gRPC thread
     */
    public AdsClient(Channel channel, CallCredentials credentials, String nodeId, Consumer<EnvoyConfig> published) {
        this.stub = AggregatedDiscoveryServiceGrpc.newStub(requireNonNull(channel, "channel"))
                .withCallCredentials(requireNonNull(credentials, "credentials"));
        this.node = Node.newBuilder().setId(requireNonNull(nodeId, "nodeId")).setCluster("wisp-waypoint").build();
        this.published = requireNonNull(published, "published");
    }

    /** The configuration last published (empty before the first response). */
    public EnvoyConfig current() {
        return current.get();
    }

    /** Opens the stream and subscribes; returns at once. */
    public synchronized void start() {
        if (closed) {
            return;
        }
        requests = stub.streamAggregatedResources(new Responses());
        nonces.clear();
        request(LDS, Set.of());
        request(CDS, Set.of());
        if (!routeNames.isEmpty()) {
            request(RDS, routeNames);
        }
        if (!clusterNames.isEmpty()) {
            request(EDS, clusterNames);
        }
    }

    /** Guarded by {@code this}. */
    private void request(String type, Set<String> names) {
        request(type, names, null);
    }

    private void request(String type, Set<String> names, String error) {
        DiscoveryRequest.Builder r = DiscoveryRequest.newBuilder().setNode(node).setTypeUrl(type)
                .addAllResourceNames(new TreeSet<>(names)).setVersionInfo(acked.getOrDefault(type, ""))
                .setResponseNonce(nonces.getOrDefault(type, ""));
        if (error != null) {
            r.setErrorDetail(com.google.rpc.Status.newBuilder().setCode(3).setMessage(error));
        }
        requests.onNext(r.build());
    }

    private synchronized void onResponse(DiscoveryResponse r) {
        failures = 0;
        String type = r.getTypeUrl();
        nonces.put(type, r.getNonce());
        try {
            switch (type) {
                case LDS -> {
                    Set<String> names = new HashSet<>();
                    for (Any a : r.getResourcesList()) {
                        HttpConnectionManager hcm = a.unpack(Listener.class).getApiListener().getApiListener()
                                .unpack(HttpConnectionManager.class);
                        names.add(hcm.getRds().getRouteConfigName());
                    }
                    ack(r);
                    if (!names.equals(routeNames)) {
                        routeNames = Set.copyOf(names);
                        routes = keep(routes, routeNames);
                        request(RDS, routeNames);
                    }
                }
                case CDS -> {
                    Set<String> names = new HashSet<>();
                    for (Any a : r.getResourcesList()) {
                        names.add(a.unpack(Cluster.class).getName());
                    }
                    ack(r);
                    if (!names.equals(clusterNames)) {
                        clusterNames = Set.copyOf(names);
                        endpoints = keep(endpoints, clusterNames);
                        request(EDS, clusterNames);
                    }
                }
                case RDS -> {
                    Map<String, RouteConfiguration> next = new HashMap<>();
                    for (Any a : r.getResourcesList()) {
                        RouteConfiguration rc = a.unpack(RouteConfiguration.class);
                        next.put(rc.getName(), rc);
                    }
                    routes = next;
                    ack(r);
                }
                case EDS -> {
                    Map<String, ClusterLoadAssignment> next = new HashMap<>();
                    for (Any a : r.getResourcesList()) {
                        ClusterLoadAssignment cla = a.unpack(ClusterLoadAssignment.class);
                        next.put(cla.getClusterName(), cla);
                    }
                    endpoints = next;
                    ack(r);
                }
                default -> {
                    request(type, Set.of(), "type " + type + " was not asked for");
                    return;
                }
            }
        } catch (InvalidProtocolBufferException | RuntimeException e) {
            LOG.warn("Envoy xDS {} version {} refused (NACK), keeping the previous one: {}", type, r.getVersionInfo(),
                    e.toString());
            request(type, names(type), "cannot decode: " + e.getMessage());
            return;
        }
        EnvoyConfig c = new EnvoyConfig(routes, clusterNames, endpoints);
        current.set(c);
        LOG.debug("Envoy xDS {} version {}: {} route configurations, {} clusters", type, r.getVersionInfo(),
                c.routes().size(), c.clusters().size());
        published.accept(c);
    }

    private Set<String> names(String type) {
        return switch (type) {
            case RDS -> routeNames;
            case EDS -> clusterNames;
            default -> Set.of();
        };
    }

    private void ack(DiscoveryResponse r) {
        acked.put(r.getTypeUrl(), r.getVersionInfo());
        request(r.getTypeUrl(), names(r.getTypeUrl()));
    }

    private static <T> Map<String, T> keep(Map<String, T> m, Set<String> names) {
        Map<String, T> out = new HashMap<>(m);
        out.keySet().retainAll(names);
        return out;
    }

    private synchronized void onBroken(Throwable t) {
        if (closed) {
            return;
        }
        Duration delay = RECONNECT.delay(failures++, ThreadLocalRandom.current().nextDouble());
        LOG.warn("Envoy xDS stream to the control plane ended ({}); reconnecting in {} ms", t == null
                ? "completed"
                : t.getMessage(), delay.toMillis());
        Thread.ofVirtual().name("wisp-waypoint-ads-retry").start(() -> {
            try {
                Thread.sleep(delay);
                start();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (requests != null) {
            requests.onError(io.grpc.Status.CANCELLED.withDescription("waypoint closing").asRuntimeException());
        }
    }

    private final class Responses implements StreamObserver<DiscoveryResponse> {
        @Override
        public void onNext(DiscoveryResponse r) {
            onResponse(r);
        }

        @Override
        public void onError(Throwable t) {
            onBroken(t);
        }

        @Override
        public void onCompleted() {
            onBroken(null);
        }
    }
}
