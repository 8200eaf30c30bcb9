package dev.wisp.node.proxy;

import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import java.time.Duration;
import java.util.Set;

/**
 * The two ends of a pool test, from one in-memory CA: the client agent's credentials (node n1) and
 * event loops, and the credentials of the server node n2 that a {@link ScriptedHboneServer} presents
 * ({@link #SERVER_NODE}, the identity a client accepts for n2's workloads).
 */
record PoolPeers(Identities client, Identities server, Transport transport) implements AutoCloseable {
    static final SpiffeId SERVER_NODE = IdentityProvider.nodeId("cluster.local", "n2");

    static PoolPeers start() {
        CertificateAuthority ca = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
                NodeAuthorizer.unrestricted()));
        return new PoolPeers(Identities.local(ca, "n1"), Identities.local(ca, "n2"), Transport.create(2));
    }

    /**
     * The proxy context of the agent of node {@code n1} (with {@link #client}'s credentials) or
     * {@code n2} (with {@link #server}'s) over {@code index}, on this pair's transport, HBONE on 15008.
     */
    ProxyContext context(String node, WorkloadIndex index, Set<Integer> agentPorts, Duration connectTimeout) {
        Identities identities = switch (node) {
            case "n1" -> client;
            case "n2" -> server;
            default -> throw new IllegalArgumentException("pool peers are nodes n1 and n2, not " + node);
        };
        return new ProxyContext(node, index, new HboneTls(identities), new Telemetry(), transport, agentPorts, 15008,
                connectTimeout);
    }

    /** A scripted HBONE server presenting {@link #SERVER_NODE}. */
    ScriptedHboneServer scriptedServer(int maxStreams, boolean ackPings, long setupDelayMillis) throws Exception {
        return new ScriptedHboneServer(new HboneTls(server).server(SERVER_NODE), maxStreams, ackPings,
                setupDelayMillis);
    }

    @Override
    public void close() {
        transport.close();
        client.close();
        server.close();
    }
}
