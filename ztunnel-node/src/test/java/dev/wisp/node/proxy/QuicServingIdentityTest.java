package dev.wisp.node.proxy;

import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.TwoAgents;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.util.concurrent.Future;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The SVID the QUIC HBONE server presents, chosen at each handshake by the address its socket is
 * bound to, as the HTTP/2 server chooses by each connection's local address: n2's agent is bound to
 * 127.0.0.2, and once its state names a workload of n2 at that address, QUIC clients see that
 * workload's identity, not the node's.
 */
class QuicServingIdentityTest {

    @Test
    void anAgentBoundToAWorkloadAddressPresentsThatWorkloadsSvidOverQuic() throws Exception {
        try (TwoAgents mesh = new TwoAgents(Duration.ofSeconds(5), Optional.of(HboneClient.Mode.H3));
                Identities mine = Identities.create("cluster.local", Identities.localSigner(mesh.ca, "n1"),
                        mesh.ca::bundle);
                Transport t = Transport.create(1)) {
            SpiffeId node = IdentityProvider.nodeId("cluster.local", "n2");
            QuicHbonePool before = new QuicHbonePool(QuicClients.context(mine, t), 10, () -> Duration.ofSeconds(10),
                    Duration.ofMinutes(5));
            assertThat(presented(QuicClients.openToN2(mesh, before))).as("no workload at 127.0.0.2 yet").isEqualTo(
                    node);
            before.close();

            // After the bind: the choice is made at the handshake, not when the socket was bound.
            Resource bound = res(workload("pod-n2", "bound", "n2", "127.0.0.2"));
            mesh.n2.index().apply(StateUpdates.WORKLOAD, List.of(bound), List.of());
            SpiffeId workloadId = IdentityProvider.workloadId(bound.getWorkload());
            QuicHbonePool after = new QuicHbonePool(QuicClients.context(mine, t), 10, () -> Duration.ofSeconds(10),
                    Duration.ofMinutes(5));
            assertThat(presented(QuicClients.openToN2(mesh, after, List.of(workloadId)))).isEqualTo(workloadId);
            // A client that accepts only the node's identity refuses the workload's certificate in the handshake.
            Future<QuicStreamChannel> nodeOnly = QuicClients.openToN2(mesh, after, List.of(node));
            assertThat(nodeOnly.await(20, TimeUnit.SECONDS)).isTrue();
            assertThat(nodeOnly.cause()).isInstanceOf(HboneException.class).hasMessageContaining(
                    "CERTIFICATE_VERIFY_FAILED");
            after.close();
        }
    }

    static SpiffeId presented(Future<QuicStreamChannel> stream) throws Exception {
        QuicChannel quic = stream.get(20, TimeUnit.SECONDS).parent();
        return HboneTls.peerId(quic.sslEngine().getSession()).orElseThrow();
    }
}
