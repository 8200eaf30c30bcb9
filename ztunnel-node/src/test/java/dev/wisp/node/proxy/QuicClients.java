package dev.wisp.node.proxy;

import dev.wisp.node.TwoAgents;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/** QUIC HBONE clients outside {@link TwoAgents}, for tests that drive a {@link QuicHbonePool} themselves. */
final class QuicClients {
    private QuicClients() {}

    /** A client agent's context with {@code identities}. */
    static ProxyContext context(Identities identities, Transport t) {
        return new ProxyContext("n1", WorkloadIndex.create(), new HboneTls(identities), new Telemetry(), t, Set.of(),
                15008, Duration.ofSeconds(5));
    }

    /** A request stream from pod-a's identity to n2's QUIC HBONE server, accepting {@code server}; no CONNECT sent. */
    static Future<QuicStreamChannel> openToN2(TwoAgents mesh, QuicHbonePool pool, List<SpiffeId> server) {
        PoolKey key = new PoolKey(SpiffeId.parse(TwoAgents.CLIENT_ID), server, mesh.n2.addresses().get("hbone_quic"));
        return pool.open(key, new ChannelInboundHandlerAdapter(), ImmediateEventExecutor.INSTANCE.newPromise());
    }

    /** As {@link #openToN2(TwoAgents, QuicHbonePool, List)}, accepting n2's node identity. */
    static Future<QuicStreamChannel> openToN2(TwoAgents mesh, QuicHbonePool pool) {
        return openToN2(mesh, pool, List.of(IdentityProvider.nodeId("cluster.local", "n2")));
    }
}
