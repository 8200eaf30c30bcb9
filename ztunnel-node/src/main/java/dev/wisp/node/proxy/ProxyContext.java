package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import java.time.Duration;
import java.util.Set;

/**
 * What every listener and the pool share.
 *
 * @param nodeName the node this agent serves (workloads with {@code node == nodeName} are local)
 * @param index the agent's state
 * @param tls SVIDs and TLS contexts
 * @param telemetry metrics and access log
 * @param transport event loops
 * @param agentPorts the agent's own listener ports: never accepted as a destination
 * @param hbonePort the HBONE port assumed for nodes that do not name one
 * @param connectTimeout for upstream TCP and HBONE connections
 * @param connections the open inbound connections, decided again when the state changes
 */
public record ProxyContext(String nodeName, WorkloadIndex index, HboneTls tls, Telemetry telemetry,
        Transport transport, Set<Integer> agentPorts, int hbonePort, Duration connectTimeout,
        ConnectionManager connections) {
    public ProxyContext {
        requireNonNull(nodeName, "nodeName");
        requireNonNull(index, "index");
        requireNonNull(tls, "tls");
        requireNonNull(telemetry, "telemetry");
        requireNonNull(transport, "transport");
        agentPorts = Set.copyOf(agentPorts);
        requireNonNull(connectTimeout, "connectTimeout");
        requireNonNull(connections, "connections");
    }

    /** With a {@link ConnectionManager} of its own over {@code index}. */
    public ProxyContext(String nodeName, WorkloadIndex index, HboneTls tls, Telemetry telemetry,
            Transport transport, Set<Integer> agentPorts, int hbonePort, Duration connectTimeout) {
        this(nodeName, index, tls, telemetry, transport, agentPorts, hbonePort, connectTimeout,
                ConnectionManager.create(nodeName, index, agentPorts));
    }
}
