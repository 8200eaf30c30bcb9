package dev.wisp.controlplane.xds;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.DeltaWorkloadRequest;
import dev.wisp.api.workload.v1.DeltaWorkloadResponse;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.api.workload.v1.WorkloadDiscoveryGrpc;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The workload discovery service: one {@link DeltaStream} per connected agent, each converging to
 * the latest published {@link Snapshot}. Publishing hands each stream the snapshot on a virtual
 * thread; a stream serializes its own work with its lock, so a slow agent delays only itself.
 */
public final class WorkloadDiscoveryServer extends WorkloadDiscoveryGrpc.WorkloadDiscoveryImplBase {
    /** A refusal by an agent, kept for status until that agent ACKs the type again. */
    public record Nack(String node, String typeUrl, long generation, String message, Instant at) {}

    /**
     * Where the ACKs of one type stand: {@code agents} agents have ACKed {@code generation}, the
     * latest generation any agent ACKed, the last of them at {@code lastAt} (this process's clock,
     * when the ACK was processed). What {@code bench/control-plane} times a change by.
     */
    public record AckCount(String typeUrl, long generation, int agents, Instant lastAt) {
        /** This count with one more ACK ({@code ack}, of one agent): a later generation starts over. */
        AckCount plus(AckCount ack) {
            if (ack.generation < generation) {
                return this;
            }
            return ack.generation == generation ? new AckCount(typeUrl, generation, agents + 1, ack.lastAt) : ack;
        }
    }

    private final Map<String, AckCount> acks = new ConcurrentHashMap<>();
    private final ExecutorService pushes = Executors.newVirtualThreadPerTaskExecutor();
    /** Live streams; added on the gRPC thread that opens them, removed when they end. */
    private final Set<DeltaStream> streams = ConcurrentHashMap.newKeySet();
    private final AtomicReference<Snapshot> current = new AtomicReference<>();
    private final Map<String, Nack> nacks = new ConcurrentHashMap<>();
    private final List<PushListener> listeners = new CopyOnWriteArrayList<>();
    private volatile RegistrationHandler registrations = (n, r) -> {};
    /** Last computed diff per type between two shared maps: every stream makes the same step. */
    private final Map<String, CachedDelta> deltas = new ConcurrentHashMap<>();
    final Counter.Builder pushesCounter;
    final Timer pushLatency;
    final MeterRegistry registry;
    final Refusals refusals;

    private record CachedDelta(Map<String, Resource> from, Map<String, Resource> to, Delta delta) {}

    /** A server with nothing published: streams get no answer until the first {@link #publish}. */
    public WorkloadDiscoveryServer(MeterRegistry registry) {
        this.registry = requireNonNull(registry, "registry");
        this.refusals = new Refusals(registry);
        registry.gauge("wisp_xds_connected_agents", streams, s -> s.stream().filter(DeltaStream::identified).count());
        this.pushesCounter = Counter.builder("wisp_xds_pushes").description("discovery responses sent to agents");
        this.pushLatency = Timer.builder("wisp_xds_push_latency")
                .description("from a configuration change being published to an agent's ACK of it")
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofSeconds(30))
                .register(registry);
        // At zero from the start, so that dashboards and alerts see "no NACKs" rather than no series.
        for (String type : dev.wisp.controlplane.translate.TypeUrls.ALL) {
            Counter.builder("wisp_xds_nacks").tag("type", shortType(type)).register(registry);
        }
    }

    /**
     * Called with each WireGuard registration an agent sends, for the node its credential
     * authenticated (on a gRPC thread, outside any stream's lock).
     */
    @FunctionalInterface
    public interface RegistrationHandler {
        void registered(String node, WireGuardRegistration registration);
    }

    /** Sets who handles WireGuard registrations (none: they are ignored). */
    public void onRegistration(RegistrationHandler h) {
        this.registrations = requireNonNull(h, "h");
    }

    void registered(String node, WireGuardRegistration r) {
        registrations.registered(node, r);
    }

    public void addListener(PushListener l) {
        listeners.add(requireNonNull(l, "l"));
    }

    /** Makes {@code s} the configuration every stream converges to. */
    public void publish(Snapshot s) {
        requireNonNull(s, "s");
        current.set(s);
        for (DeltaStream stream : streams) {
            pushes.execute(() -> stream.onSnapshot(s));
        }
    }

    /** The latest published snapshot, or null before the first. */
    public Snapshot current() {
        return current.get();
    }

    /** Nodes with an open, identified stream. */
    public Set<String> connectedNodes() {
        Set<String> out = new java.util.TreeSet<>();
        for (DeltaStream s : streams) {
            if (s.identified()) {
                out.add(s.node());
            }
        }
        return out;
    }

    /** Where this server and the certificate service count and log what they refuse to agents. */
    public Refusals refusals() {
        return refusals;
    }

    /** Outstanding refusals (node, type) that no later ACK has cleared. */
    public List<Nack> nacks() {
        return List.copyOf(nacks.values());
    }

    @Override
    public StreamObserver<DeltaWorkloadRequest> deltaWorkloads(StreamObserver<DeltaWorkloadResponse> responses) {
        String node = NodeAuthInterceptor.NODE.get();
        DeltaStream stream = new DeltaStream(this, (ServerCallStreamObserver<DeltaWorkloadResponse>) responses, node);
        streams.add(stream);
        return stream;
    }

    void closed(DeltaStream s) {
        streams.remove(s);
    }

    Delta delta(String typeUrl, Map<String, Resource> from, Map<String, Resource> to, boolean shared) {
        if (!shared) {
            return Delta.between(from, to);
        }
        CachedDelta c = deltas.get(typeUrl);
        if (c != null && c.from == from && c.to == to) {
            return c.delta;
        }
        Delta d = Delta.between(from, to);
        deltas.put(typeUrl, new CachedDelta(from, to, d));
        return d;
    }

    /** The ACKs of each type's latest ACKed generation. */
    public List<AckCount> acks() {
        return List.copyOf(acks.values());
    }

    void acked(String node, String typeUrl, long generation, long publishedNanos) {
        nacks.remove(node + " " + typeUrl);
        acks.merge(typeUrl, new AckCount(typeUrl, generation, 1, Instant.now()), AckCount::plus);
        pushLatency.record(Duration.ofNanos(System.nanoTime() - publishedNanos));
        listeners.forEach(l -> l.acked(node, typeUrl, generation));
    }

    void nacked(String node, String typeUrl, long generation, String message) {
        nacks.put(node + " " + typeUrl, new Nack(node, typeUrl, generation, message, Instant.now()));
        Counter.builder("wisp_xds_nacks").tag("type", shortType(typeUrl)).register(registry).increment();
        listeners.forEach(l -> l.nacked(node, typeUrl, generation, message));
    }

    void pushed(String typeUrl) {
        pushesCounter.tag("type", shortType(typeUrl)).register(registry).increment();
    }

    static String shortType(String typeUrl) {
        return typeUrl.substring(typeUrl.lastIndexOf('.') + 1);
    }

    /**
     * Ends the streams of nodes not in {@code nodes} (the configuration's), each counted and logged
     * as {@code node_removed}: an agent of a removed node keeps nothing open.
     */
    public void disconnectAllBut(Set<String> nodes) {
        for (DeltaStream s : streams) {
            String node = s.node();
            if (node != null && !nodes.contains(node)) {
                String msg = "Node " + node + " left the mesh's configuration; its stream is closed";
                refusals.refuse(Refusals.Reason.NODE_REMOVED, node, "discovery stream: " + msg);
                s.removed(msg);
            }
        }
    }

    /** Ends every stream (agents reconnect) and stops the push threads. */
    public void shutdown() {
        pushes.shutdownNow();
        for (DeltaStream s : streams) {
            s.cancel();
        }
    }
}
