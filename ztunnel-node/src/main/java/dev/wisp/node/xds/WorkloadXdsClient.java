package dev.wisp.node.xds;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.base.Backoff;
import dev.wisp.node.state.StateUpdates;
import java.time.Duration;
import java.util.Optional;
import io.grpc.Channel;
import java.util.function.Supplier;

/**
 * The agent's workload discovery client: one delta stream to the control plane, feeding
 * {@link StateUpdates}. A response that applies is ACKed, one that {@link StateUpdates#apply}
 * refuses is NACKed with the refusal's message. When the stream ends it reconnects with
 * exponential backoff and jitter, declaring what it holds ({@code initial_resource_versions}) so
 * that only differences are sent; meanwhile the agent keeps serving its last state, which this
 * client never clears.
 */
public interface WorkloadXdsClient extends AutoCloseable {
    /** Reconnect delays: 500 ms doubling to 30 s, ±20 %. */
    Backoff RECONNECT = new Backoff(Duration.ofMillis(500), Duration.ofSeconds(30), 0.2);

    /**
     * A client for {@code node} over {@code channel} (the caller owns and closes the channel).
     *
     * @param credential read at each (re)connect: the node credential sent as
     *            {@code authorization: Bearer <credential>}
     */
    static WorkloadXdsClient create(Channel channel, String node, Supplier<String> credential, StateUpdates state) {
        return create(channel, node, credential, state, RECONNECT);
    }

    static WorkloadXdsClient create(Channel channel, String node, Supplier<String> credential, StateUpdates state,
            Backoff backoff) {
        return create(channel, node, credential, state, backoff, Optional::empty);
    }

    /**
     * As above, and the node's WireGuard entry for the control plane's key registry, read at each
     * (re)connect and sent with the stream's first request (so a restarted control plane learns it
     * again).
     */
    static WorkloadXdsClient create(Channel channel, String node, Supplier<String> credential, StateUpdates state,
            Backoff backoff, Supplier<Optional<WireGuardRegistration>> wireguard) {
        return new DeltaXdsClient(requireNonNull(channel, "channel"), requireNonNull(node, "node"),
                requireNonNull(credential, "credential"), requireNonNull(state, "state"),
                requireNonNull(backoff, "backoff"), requireNonNull(wireguard, "wireguard"));
    }

    /** Opens the stream; returns at once. */
    void start();

    /**
     * Sends the node's WireGuard entry again on the open stream (its key was rotated); without an
     * open stream, the next connect sends it.
     */
    void republishWireGuard();

    /**
     * Where the stream stands, read at once.
     *
     * @param connected whether the stream is open and has received at least one response
     * @param acks responses ACKed since creation
     * @param nacks responses NACKed since creation
     * @param lastError the last stream failure or NACK reason
     * @param generation the control plane's configuration generation ({@code system_version_info}) of
     *     the last response applied; 0 before the first
     * @param sinceUpdate how long ago the last response was applied; before the first, how long
     *     this client has existed (that long without configuration)
     */
    record StreamStatus(boolean connected, long acks, long nacks, Optional<String> lastError, long generation,
            Duration sinceUpdate) {}

    /** The stream's status now. */
    StreamStatus status();

    /** Stops reconnecting and ends the stream; the state fed so far is left as it is. */
    @Override
    void close();
}
