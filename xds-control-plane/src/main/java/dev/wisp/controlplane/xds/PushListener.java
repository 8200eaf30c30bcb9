package dev.wisp.controlplane.xds;

/** Observes agents' answers to pushes (status pages, tests, the benchmark). Called on gRPC threads. */
public interface PushListener {
    /** {@code node} applied {@code typeUrl} at {@code generation}. */
    default void acked(String node, String typeUrl, long generation) {}

    /** {@code node} refused a response of {@code typeUrl}; {@code message} is the agent's reason. */
    default void nacked(String node, String typeUrl, long generation, String message) {}
}
