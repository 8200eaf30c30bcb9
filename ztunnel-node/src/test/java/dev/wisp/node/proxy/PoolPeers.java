package dev.wisp.node.proxy;

import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;

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
