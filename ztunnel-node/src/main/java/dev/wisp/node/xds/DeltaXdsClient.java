package dev.wisp.node.xds;

import com.google.rpc.Code;
import dev.wisp.base.Backoff;
import dev.wisp.api.workload.v1.DeltaWorkloadRequest;
import dev.wisp.api.workload.v1.DeltaWorkloadResponse;
import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.api.workload.v1.WorkloadDiscoveryGrpc;
import dev.wisp.node.state.InvalidResourceException;
import dev.wisp.node.state.StateUpdates;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The delta stream and its reconnect loop. Threads: responses arrive on the channel's executor
 * (one at a time per stream); reconnects run on a private scheduler thread. Fields marked
 * "guarded" are read and written under {@code this}.
 */
final class DeltaXdsClient implements WorkloadXdsClient {
    private static final Logger log = LoggerFactory.getLogger(DeltaXdsClient.class);
    private final Channel channel;
    private final String node;
    /** The node credential as each stream's call credentials (read again at every connect). */
    private final BearerCredentials credentials;
    private final StateUpdates state;
    private final Backoff backoff;
    private final Supplier<Optional<WireGuardRegistration>> wireguard;
    private final Random random = new Random();
    private final ScheduledExecutorService scheduler;
    private final AtomicLong acks = new AtomicLong();
    private final AtomicLong nacks = new AtomicLong();
    /** Guarded. */
    private Stream stream;
    /** Guarded: consecutive failed attempts, reset by a response. */
    private int attempt;
    /** Guarded. */
    private boolean closed;
    private volatile boolean connected;
    private volatile String lastError;
    /** When the last response was applied; until then, when this client was made. */
    private volatile long lastUpdateNanos = System.nanoTime();
    /** The control plane's configuration generation of the last response applied; 0 before one. */
    private volatile long generation;

    DeltaXdsClient(Channel channel, String node, Supplier<String> credential, StateUpdates state, Backoff backoff,
            Supplier<Optional<WireGuardRegistration>> wireguard) {
        this.wireguard = wireguard;
        this.channel = channel;
        this.node = node;
        this.credentials = BearerCredentials.of(credential);
        this.state = state;
        this.backoff = backoff;
        this.scheduler = Executors.newSingleThreadScheduledExecutor(
                Thread.ofPlatform().name("wisp-xds-" + node).daemon().factory());
    }

    @Override
    public synchronized void start() {
        if (stream == null && !closed) {
            connect();
        }
    }

    private synchronized void connect() {
        if (closed) {
            return;
        }
        if (attempt > 0 && channel instanceof ManagedChannel managed) {
            // Our backoff decides when to retry; the channel's own (up to 2 min) must not delay it further.
            managed.resetConnectBackoff();
        }
        Stream s = new Stream();
        stream = s;
        WorkloadDiscoveryGrpc.newStub(channel).withCallCredentials(credentials).deltaWorkloads(s);
        // After the call has started: one wildcard subscription per type, declaring what we hold;
        // the first also carries this node's WireGuard entry for the key registry.
        Optional<WireGuardRegistration> registration = wireguard.get();
        for (String type : StateUpdates.TYPES) {
            DeltaWorkloadRequest.Builder req = DeltaWorkloadRequest.newBuilder()
                    .setNodeName(node)
                    .setTypeUrl(type)
                    .addResourceNamesSubscribe("*")
                    .putAllInitialResourceVersions(state.versions(type));
            registration.ifPresent(req::setWireguard);
            registration = Optional.empty();
            s.requests.onNext(req.build());
        }
    }

    @Override
    public synchronized void republishWireGuard() {
        Optional<WireGuardRegistration> registration = wireguard.get();
        if (stream == null || stream.requests == null || registration.isEmpty()) {
            return;
        }
        // On the open stream: a request that changes no subscription and answers no response only
        // carries the entry (the next connect sends it anyway).
        stream.requests.onNext(DeltaWorkloadRequest.newBuilder()
                .setNodeName(node)
                .setTypeUrl(StateUpdates.TYPES.getFirst())
                .setWireguard(registration.get())
                .build());
    }

    private synchronized void ended(Stream s, Throwable t) {
        if (stream != s) {
            return;
        }
        connected = false;
        stream = null;
        if (closed) {
            return;
        }
        Status status = t == null
                ? Status.UNAVAILABLE.withDescription("stream closed by the control plane")
                : Status.fromThrowable(t);
        lastError = status.getCode() + ": " + describe(status);
        Duration delay = backoff.delay(attempt++, random.nextDouble());
        if (status.getCode() == Status.Code.UNAVAILABLE) {
            log.warn("control plane {} unreachable: {}; keeping the last configuration, reconnecting in {} ms",
                    channel.authority(), describe(status), delay.toMillis());
        } else {
            log.warn("workload discovery stream of node {} ended ({}); keeping the last configuration, "
                    + "reconnecting in {} ms", node, lastError, delay.toMillis());
        }
        scheduler.schedule(this::connect, delay.toNanos(), TimeUnit.NANOSECONDS);
    }

    /**
     * The status's description without gRPC's pipeline dump, with its innermost cause: gRPC's "io
     * exception" alone does not say whether a handshake timed out, was reset or refused a certificate.
     */
    static String describe(Status status) {
        String d = status.getDescription() == null ? "" : status.getDescription().lines().findFirst().orElse("");
        Throwable root = status.getCause();
        while (root != null && root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        if (root == null) {
            return d;
        }
        String why = root.getClass().getSimpleName() + (root.getMessage() == null ? "" : ": " + root.getMessage());
        return d.isEmpty() ? why : d + " (" + why + ")";
    }

    private synchronized void responded() {
        attempt = 0;
    }

    @Override
    public StreamStatus status() {
        return new StreamStatus(connected, acks.get(), nacks.get(), Optional.ofNullable(lastError), generation,
                Duration.ofNanos(System.nanoTime() - lastUpdateNanos));
    }

    @Override
    public void close() {
        Stream s;
        synchronized (this) {
            closed = true;
            s = stream;
            stream = null;
        }
        scheduler.shutdownNow();
        if (s != null && s.requests != null) {
            s.requests.cancel("agent shutting down", null);
        }
        connected = false;
    }

    /** {@code system_version_info} as the control plane writes it (its generation), else {@code previous}. */
    static long generation(String versionInfo, long previous) {
        if (versionInfo.isEmpty() || versionInfo.length() > 18 || !versionInfo.chars().allMatch(Character::isDigit)) {
            return previous;
        }
        return Long.parseLong(versionInfo);
    }

    /** One attempt: its request side, set when the call starts. */
    private final class Stream implements ClientResponseObserver<DeltaWorkloadRequest, DeltaWorkloadResponse> {
        private ClientCallStreamObserver<DeltaWorkloadRequest> requests;

        @Override
        public void beforeStart(ClientCallStreamObserver<DeltaWorkloadRequest> requests) {
            this.requests = requests;
        }

        @Override
        public void onNext(DeltaWorkloadResponse r) {
            responded();
            DeltaWorkloadRequest.Builder answer = DeltaWorkloadRequest.newBuilder()
                    .setNodeName(node)
                    .setTypeUrl(r.getTypeUrl())
                    .setResponseNonce(r.getNonce());
            try {
                state.apply(r.getTypeUrl(), r.getResourcesList(), r.getRemovedResourcesList());
                acks.incrementAndGet();
                lastUpdateNanos = System.nanoTime();
                generation = generation(r.getSystemVersionInfo(), generation);
                connected = true;
            } catch (InvalidResourceException | RuntimeException e) {
                String why = e.getMessage() == null ? e.toString() : e.getMessage();
                if (e instanceof RuntimeException) {
                    log.error("node {} failed to apply {} (nonce {})", node, r.getTypeUrl(), r.getNonce(), e);
                } else {
                    log.warn("node {} refused {} (nonce {}): {}", node, r.getTypeUrl(), r.getNonce(), why);
                }
                lastError = "NACK " + r.getTypeUrl() + ": " + why;
                nacks.incrementAndGet();
                answer.setErrorDetail(com.google.rpc.Status.newBuilder()
                        .setCode(Code.INVALID_ARGUMENT_VALUE)
                        .setMessage(why));
            }
            synchronized (DeltaXdsClient.this) {
                if (stream == this) {
                    requests.onNext(answer.build());
                }
            }
        }

        @Override
        public void onError(Throwable t) {
            ended(this, t);
        }

        @Override
        public void onCompleted() {
            ended(this, null);
        }
    }
}
