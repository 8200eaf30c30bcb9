package dev.wisp.waypoint.xds;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.wisp.base.Backoff;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.CallCredentials;
import io.grpc.Channel;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The waypoint's Envoy xDS client: one state-of-the-world ADS stream to the control plane, as Envoy
 * follows it: listeners and clusters by wildcard, then the route configurations the listeners' HTTP
 * connection managers name (RDS) and the load assignments of the clusters (EDS); of a listener's HTTP
 * filters, its {@code envoy.filters.http.ext_authz} (the external authorizer of CUSTOM policies). Every response is
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
    /** The HTTP filter that calls an external authorizer, the one filter of a listener read besides RDS. */
    public static final String EXT_AUTHZ = "envoy.filters.http.ext_authz";

    private final AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceStub stub;
    private final Node node;
    private final Consumer<EnvoyConfig> published;
    private final AtomicReference<EnvoyConfig> current = new AtomicReference<>(EnvoyConfig.EMPTY);
    /** Guarded by {@code this}. */
    private StreamObserver<DiscoveryRequest> requests;
    private final Map<String, String> acked = new HashMap<>();
    private final Map<String, String> nonces = new HashMap<>();
    /** The route configurations the listeners name (RDS); guarded by {@code this}. */
    private final Named<RouteConfiguration> routes = new Named<>(RDS);
    /** The load assignments of the clusters (EDS); guarded by {@code this}. */
    private final Named<ClusterLoadAssignment> endpoints = new Named<>(EDS);
    /** The listeners' ext_authz filters by route configuration name; guarded by {@code this}. */
    private Map<String, ExtAuthz> authorizers = Map.of();
    /** The clusters' HTTP versions ({@link EnvoyConfig#upstreamHttp2}); guarded by {@code this}. */
    private Map<String, Boolean> upstreamHttp2 = Map.of();
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
        for (Named<?> dependent : List.of(routes, endpoints)) {
            if (!dependent.names.isEmpty()) {
                request(dependent.type, dependent.names);
            }
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
                    Map<String, ExtAuthz> authz = new HashMap<>();
                    for (Any a : r.getResourcesList()) {
                        HttpConnectionManager hcm = a.unpack(Listener.class).getApiListener().getApiListener()
                                .unpack(HttpConnectionManager.class);
                        names.add(hcm.getRds().getRouteConfigName());
                        Optional<ExtAuthz> filter = extAuthz(hcm);
                        if (filter.isPresent()) {
                            authz.put(hcm.getRds().getRouteConfigName(), filter.get());
                        }
                    }
                    authorizers = Map.copyOf(authz);
                    follow(r, names, routes);
                }
                case CDS -> {
                    Set<String> names = new HashSet<>();
                    Map<String, Boolean> versions = new HashMap<>();
                    for (Any a : r.getResourcesList()) {
                        Cluster cluster = a.unpack(Cluster.class);
                        names.add(cluster.getName());
                        upstreamHttp2(cluster).ifPresent(h2 -> versions.put(cluster.getName(), h2));
                    }
                    upstreamHttp2 = Map.copyOf(versions);
                    follow(r, names, endpoints);
                }
                case RDS -> receive(r, RouteConfiguration.class, RouteConfiguration::getName, routes);
                case EDS -> receive(r, ClusterLoadAssignment.class, ClusterLoadAssignment::getClusterName, endpoints);
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
        EnvoyConfig c = new EnvoyConfig(routes.resources, endpoints.names, endpoints.resources, authorizers,
                upstreamHttp2);
        current.set(c);
        LOG.debug("Envoy xDS {} version {}: {} route configurations, {} clusters", type, r.getVersionInfo(),
                c.routes().size(), c.clusters().size());
        published.accept(c);
    }

    /**
     * What a cluster's {@code typed_extension_protocol_options[}{@value #PROTOCOL_OPTIONS}{@code ]} make it
     * speak to its endpoints, as Envoy reads them: {@code explicit_http_config} HTTP/2 ({@code true}) or
     * HTTP/1.1 ({@code false}); empty for {@code use_downstream_protocol_config} or no options (what the
     * client spoke). {@code auto_config} (ALPN) has no meaning in a plaintext tunnel and is refused.
     */
    public static Optional<Boolean> upstreamHttp2(Cluster cluster) throws InvalidProtocolBufferException {
        Any options = cluster.getTypedExtensionProtocolOptionsMap().get(PROTOCOL_OPTIONS);
        if (options == null) {
            return Optional.empty();
        }
        HttpProtocolOptions o = options.unpack(HttpProtocolOptions.class);
        return switch (o.getUpstreamProtocolOptionsCase()) {
            case EXPLICIT_HTTP_CONFIG -> Optional.of(o.getExplicitHttpConfig().hasHttp2ProtocolOptions());
            case USE_DOWNSTREAM_PROTOCOL_CONFIG, UPSTREAMPROTOCOLOPTIONS_NOT_SET -> Optional.empty();
            case AUTO_CONFIG -> throw new IllegalArgumentException("cluster " + cluster.getName()
                    + ": auto_config (ALPN) is not taken; say HTTP/1.1 or HTTP/2 in explicit_http_config");
        };
    }

    /** The key of a cluster's HTTP protocol options. */
    public static final String PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

    /** The {@link #EXT_AUTHZ} filter of a listener's HTTP connection manager; empty when it has none. */
    public static Optional<ExtAuthz> extAuthz(HttpConnectionManager hcm) throws InvalidProtocolBufferException {
        for (HttpFilter f : hcm.getHttpFiltersList()) {
            if (f.getName().equals(EXT_AUTHZ)) {
                return Optional.of(f.getTypedConfig().unpack(ExtAuthz.class));
            }
        }
        return Optional.empty();
    }

    private Set<String> names(String type) {
        return switch (type) {
            case RDS -> routes.names;
            case EDS -> endpoints.names;
            default -> Set.of();
        };
    }

    /**
     * A wildcard response ({@code r}, LDS or CDS) named the resources of {@code dependent}'s type: ACK
     * it and, when the names changed, drop what is no longer named and subscribe to the new set.
     */
    private <T> void follow(DiscoveryResponse r, Set<String> names, Named<T> dependent) {
        ack(r);
        if (!names.equals(dependent.names)) {
            dependent.names = Set.copyOf(names);
            Map<String, T> kept = new HashMap<>(dependent.resources);
            kept.keySet().retainAll(dependent.names);
            dependent.resources = kept;
            request(dependent.type, dependent.names);
        }
    }

    /** A response of {@code into}'s type (RDS or EDS): its resources, by name, replace the previous ones. */
    private <T extends com.google.protobuf.Message> void receive(DiscoveryResponse r, Class<T> kind,
            Function<T, String> name, Named<T> into) throws InvalidProtocolBufferException {
        Map<String, T> next = new HashMap<>();
        for (Any a : r.getResourcesList()) {
            T resource = a.unpack(kind);
            next.put(name.apply(resource), resource);
        }
        into.resources = next;
        ack(r);
    }

    private void ack(DiscoveryResponse r) {
        acked.put(r.getTypeUrl(), r.getVersionInfo());
        request(r.getTypeUrl(), names(r.getTypeUrl()));
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

    /**
     * The resources of a type subscribed by name (RDS, EDS): the names asked for and what was received.
     * Guarded by the client; {@code resources} is replaced, never changed in place (configurations hold it).
     */
    private static final class Named<T> {
        final String type;
        Set<String> names = Set.of();
        Map<String, T> resources = Map.of();

        Named(String type) {
            this.type = type;
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
