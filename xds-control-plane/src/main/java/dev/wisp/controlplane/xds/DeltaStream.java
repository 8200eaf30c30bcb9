package dev.wisp.controlplane.xds;

import dev.wisp.api.workload.v1.DeltaWorkloadRequest;
import dev.wisp.api.workload.v1.DeltaWorkloadResponse;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.controlplane.translate.TypeUrls;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One agent's delta stream. Per type it tracks what the agent holds (the last ACKed map, or the
 * versions it declared when reconnecting), the single response in flight (at most one per type;
 * changes arriving meanwhile are sent after its ACK/NACK), and its subscription (wildcard, or
 * explicit names).
 *
 * <p>Threads: gRPC delivers requests on its executor, snapshots arrive on push threads; every
 * field below is guarded by {@link #lock}.
 */
final class DeltaStream implements StreamObserver<DeltaWorkloadRequest> {
    private static final Logger log = LoggerFactory.getLogger(DeltaStream.class);
    private final WorkloadDiscoveryServer server;
    private final ServerCallStreamObserver<DeltaWorkloadResponse> out;
    private final String authenticatedNode;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile String node;
    private Snapshot snapshot;
    private final Map<String, TypeState> types = new HashMap<>();
    private long nonces;
    private boolean done;

    private static final class TypeState {
        boolean wildcard = true;
        final Set<String> names = new HashSet<>();
        /** What the agent holds; shared maps are compared by identity, so keep the object. */
        Map<String, Resource> held = Map.of();
        boolean heldShared;
        String inFlightNonce;
        Map<String, Resource> inFlight;
        boolean inFlightShared;
        long inFlightGeneration;
        long inFlightPublished;
        boolean dirty;
        boolean answered;
    }

    DeltaStream(WorkloadDiscoveryServer server, ServerCallStreamObserver<DeltaWorkloadResponse> out,
            String authenticatedNode) {
        this.server = server;
        this.out = out;
        this.authenticatedNode = authenticatedNode;
        out.setOnCancelHandler(() -> finish(null));
    }

    boolean identified() {
        return node != null;
    }

    String node() {
        return node;
    }

    @Override
    public void onNext(DeltaWorkloadRequest req) {
        if (handle(req) && req.hasWireguard()) {
            // Outside the stream's lock: registering may publish a snapshot to every stream.
            if (authenticatedNode == null) {
                log.warn("ignoring the WireGuard registration of an unauthenticated stream for '{}'", node);
            } else {
                server.registered(authenticatedNode, req.getWireguard());
            }
        }
    }

    /** The request's discovery part; false when the stream failed or ended. */
    private boolean handle(DeltaWorkloadRequest req) {
        lock.lock();
        try {
            if (done) {
                return false;
            }
            if (node == null) {
                if (req.getNodeName().isEmpty()
                        || (authenticatedNode != null && !authenticatedNode.equals(req.getNodeName()))) {
                    String msg = "node_name '" + req.getNodeName() + "' does not match the credential's node '"
                            + authenticatedNode + "' (a service-account token speaks for the node its pod runs on): "
                            + "is the agent's --node the node it runs on?";
                    server.refusals.refuse(Refusals.Reason.XDS_OTHER_NODE, authenticatedNode, "discovery stream: "
                            + msg);
                    fail(Status.PERMISSION_DENIED.withDescription(msg));
                    return false;
                }
                node = req.getNodeName();
                snapshot = server.current();
                log.info("agent of node {} connected", node);
            } else if (!node.equals(req.getNodeName()) && !req.getNodeName().isEmpty()) {
                fail(Status.INVALID_ARGUMENT.withDescription("node_name changed within the stream"));
                return false;
            }
            String type = req.getTypeUrl();
            if (!TypeUrls.ALL.contains(type)) {
                fail(Status.INVALID_ARGUMENT.withDescription("unknown type_url '" + type + "'; expected one of "
                        + TypeUrls.ALL));
                return false;
            }
            TypeState ts = types.get(type);
            boolean fresh = ts == null;
            if (fresh) {
                ts = new TypeState();
                types.put(type, ts);
                if (!req.getInitialResourceVersionsMap().isEmpty()) {
                    ts.held = stubs(req.getInitialResourceVersionsMap());
                }
            }
            boolean subscriptionChanged = subscribe(ts, req);
            refuseOtherNodesNames(type, req);
            String nonce = req.getResponseNonce();
            if (!nonce.isEmpty()) {
                if (!nonce.equals(ts.inFlightNonce)) {
                    log.debug("node {} answered stale nonce {} for {}", node, nonce, type);
                } else if (req.hasErrorDetail()) {
                    String msg = req.getErrorDetail().getMessage();
                    log.warn("node {} refused {} (generation {}): {}", node, type, ts.inFlightGeneration, msg);
                    long gen = ts.inFlightGeneration;
                    ts.inFlightNonce = null;
                    ts.inFlight = null;
                    server.nacked(node, type, gen, msg);
                } else {
                    ts.held = ts.inFlight;
                    ts.heldShared = ts.inFlightShared;
                    ts.inFlightNonce = null;
                    ts.inFlight = null;
                    server.acked(node, type, ts.inFlightGeneration, ts.inFlightPublished);
                    if (ts.dirty) {
                        ts.dirty = false;
                        push(type, ts);
                    }
                }
            }
            if (fresh || subscriptionChanged) {
                push(type, ts);
            }
            return true;
        } catch (RuntimeException e) {
            log.error("discovery stream of node {} failed", node, e);
            fail(Status.INTERNAL.withDescription("control plane error; see its log"));
            return false;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Names in a subscription that exist but are outside this node's view (another node's
     * authorizations) are never sent (the view filters them); asking for them is counted and logged
     * as {@code xds_other_node}.
     */
    private void refuseOtherNodesNames(String type, DeltaWorkloadRequest req) {
        if (snapshot == null || req.getResourceNamesSubscribeCount() == 0) {
            return;
        }
        Map<String, Resource> all = snapshot.translation().resources(type);
        Map<String, Resource> view = snapshot.translation().view(type, node);
        if (all == view) {
            return;
        }
        List<String> others = req.getResourceNamesSubscribeList().stream()
                .filter(n -> all.containsKey(n) && !view.containsKey(n)).limit(5).toList();
        if (!others.isEmpty()) {
            server.refusals.refuse(Refusals.Reason.XDS_OTHER_NODE, node, "subscription to "
                    + WorkloadDiscoveryServer.shortType(type) + " " + others
                    + ", outside the node's scope: not sent");
        }
    }

    private static Map<String, Resource> stubs(Map<String, String> versions) {
        Map<String, Resource> held = new HashMap<>();
        versions.forEach((n, v) -> held.put(n, Resource.newBuilder().setName(n).setVersion(v).build()));
        return held;
    }

    private static boolean subscribe(TypeState ts, DeltaWorkloadRequest req) {
        boolean changed = false;
        for (String n : req.getResourceNamesSubscribeList()) {
            if (n.equals("*")) {
                changed |= !ts.wildcard;
                ts.wildcard = true;
            } else {
                if (ts.names.isEmpty() && ts.wildcard && !req.getResourceNamesSubscribeList().contains("*")) {
                    ts.wildcard = false;
                }
                changed |= ts.names.add(n);
            }
        }
        for (String n : req.getResourceNamesUnsubscribeList()) {
            if (n.equals("*")) {
                changed |= ts.wildcard;
                ts.wildcard = false;
            } else {
                changed |= ts.names.remove(n);
            }
        }
        return changed;
    }

    void onSnapshot(Snapshot s) {
        lock.lock();
        try {
            if (done || node == null || (snapshot != null && s.generation() <= snapshot.generation())) {
                return;
            }
            snapshot = s;
            for (var e : types.entrySet()) {
                push(e.getKey(), e.getValue());
            }
        } catch (RuntimeException e) {
            log.error("pushing to node {} failed", node, e);
            fail(Status.INTERNAL.withDescription("control plane error; see its log"));
        } finally {
            lock.unlock();
        }
    }

    /** Sends what {@code ts} lacks of the current snapshot, unless a response is already in flight. */
    private void push(String type, TypeState ts) {
        if (snapshot == null) {
            // No valid configuration read yet: answering now would tell agents to drop what they hold.
            return;
        }
        if (ts.inFlightNonce != null) {
            ts.dirty = true;
            return;
        }
        Map<String, Resource> view = snapshot.translation().view(type, node);
        boolean shared = view == snapshot.translation().resources(type);
        if (!ts.wildcard) {
            Map<String, Resource> subset = new LinkedHashMap<>();
            for (String n : ts.names) {
                Resource r = view.get(n);
                if (r != null) {
                    subset.put(n, r);
                }
            }
            view = subset;
            shared = false;
        }
        Delta d = server.delta(type, ts.held, view, shared && ts.heldShared);
        if (d.isEmpty() && ts.answered) {
            ts.held = view;
            ts.heldShared = shared;
            return;
        }
        ts.answered = true;
        String nonce = Long.toString(++nonces);
        ts.inFlightNonce = nonce;
        ts.inFlight = view;
        ts.inFlightShared = shared;
        ts.inFlightGeneration = snapshot.generation();
        ts.inFlightPublished = snapshot.publishedNanos();
        out.onNext(DeltaWorkloadResponse.newBuilder()
                .setTypeUrl(type)
                .setNonce(nonce)
                .setSystemVersionInfo(Long.toString(snapshot.generation()))
                .addAllResources(d.upserts())
                .addAllRemovedResources(d.removed())
                .build());
        server.pushed(type);
    }

    @Override
    public void onError(Throwable t) {
        finish(t);
    }

    @Override
    public void onCompleted() {
        lock.lock();
        try {
            if (!done) {
                out.onCompleted();
            }
        } finally {
            lock.unlock();
        }
        finish(null);
    }

    /** Ends the stream because its node left the configuration (the agent's token is revoked with it). */
    void removed(String message) {
        fail(Status.UNAUTHENTICATED.withDescription(message));
    }

    void cancel() {
        fail(Status.UNAVAILABLE.withDescription("control plane shutting down"));
    }

    private void fail(Status status) {
        lock.lock();
        try {
            if (!done) {
                out.onError(status.asRuntimeException());
            }
        } finally {
            lock.unlock();
        }
        finish(null);
    }

    private void finish(Throwable t) {
        lock.lock();
        try {
            if (done) {
                return;
            }
            done = true;
        } finally {
            lock.unlock();
        }
        server.closed(this);
        if (node != null) {
            log.info("agent of node {} disconnected{}", node, t == null ? "" : ": " + Status.fromThrowable(t));
        }
    }
}
