package dev.wisp.controlplane.envoy;

import static java.util.Objects.requireNonNull;

import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.DiscoveryServerCallbacks;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.grpc.BindableService;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Envoy's aggregated discovery service (ADS, state of the world and delta) over java-control-plane's
 * snapshot cache. Every client (the waypoint, a proxyless gRPC client) is in one group and sees the
 * same snapshot: the resources of the whole mesh, versioned by the configuration generation that
 * produced them. It keeps, per client node id and type, the last version the client ACKed (what
 * status and tests read) and logs NACKs.
 *
 * <p>Thread-safe: {@link #publish} may run on any thread; the cache answers open watches on the
 * publishing thread and on gRPC's. Nothing to close: the streams end with the gRPC server.
 */
public final class EnvoyDiscovery {
    private static final Logger log = LoggerFactory.getLogger(EnvoyDiscovery.class);
    /** The one node group: Envoy resources are the same for every client. */
    static final String GROUP = "mesh";
    /** At most this many client node ids have their ACKs kept. */
    static final int MAX_CLIENTS = 4096;

    /** A client's ACK of one type: the version and the resource names it asked for. */
    public record Ack(String typeUrl, String version, List<String> resourceNames) {}

    private final SimpleCache<String> cache = new SimpleCache<>(node -> GROUP);
    private final Map<String, Map<String, Ack>> acks = new ConcurrentHashMap<>();
    private final V3DiscoveryServer server = new V3DiscoveryServer(new DiscoveryServerCallbacks() {
        @Override
        public void onV3StreamRequest(long stream, DiscoveryRequest r) {
            if (r.getResponseNonce().isEmpty()) {
                return;
            }
            String node = r.getNode().getId();
            if (r.hasErrorDetail()) {
                log.warn("Envoy xDS client {} refused {} version {}: {}", node, r.getTypeUrl(), r.getVersionInfo(),
                        r.getErrorDetail().getMessage());
                return;
            }
            if (acks.size() >= MAX_CLIENTS && !acks.containsKey(node)) {
                return; // node ids are the client's word: keep the map bounded
            }
            acks.computeIfAbsent(node, n -> new ConcurrentHashMap<>()).put(r.getTypeUrl(),
                    new Ack(r.getTypeUrl(), r.getVersionInfo(), List.copyOf(r.getResourceNamesList())));
        }

        @Override
        public void onV3StreamDeltaRequest(long stream, DeltaDiscoveryRequest r) {
            if (r.hasErrorDetail()) {
                log.warn("Envoy xDS client {} refused {}: {}", r.getNode().getId(), r.getTypeUrl(),
                        r.getErrorDetail().getMessage());
            }
        }
    }, cache);

    /** Makes {@code resources} the snapshot every client converges to, at version {@code generation}. */
    public void publish(long generation, EnvoyResources resources) {
        requireNonNull(resources, "resources");
        cache.setSnapshot(GROUP, resources.snapshot(Long.toString(generation)));
    }

    /** The live snapshot, or null before the first {@link #publish}. */
    public Snapshot snapshot() {
        return cache.getSnapshot(GROUP);
    }

    /** The last ACK of {@code typeUrl} by the client whose node id is {@code node}, or null. */
    public Ack ack(String node, String typeUrl) {
        return acks.getOrDefault(node, Map.of()).get(typeUrl);
    }

    /** The ADS service ({@code envoy.service.discovery.v3.AggregatedDiscoveryService}) to add to a gRPC server. */
    public BindableService aggregatedService() {
        return server.getAggregatedDiscoveryServiceImpl();
    }
}
