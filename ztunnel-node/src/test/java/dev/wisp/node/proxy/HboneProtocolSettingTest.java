package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.workload.v1.HboneProtocol;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.Fixtures;
import dev.wisp.node.NodeRuntime;
import dev.wisp.node.TwoAgents;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.testing.RoundTrip;
import dev.wisp.testing.Socks5Client;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * MeshConfig's {@code spec.hbone.protocol} as the agent receives it (its own Node resource's
 * {@code hbone_protocol}): a change switches the framing of the agent's next connections while it
 * runs, and an agent started with {@code --hbone} keeps its flag's framing whatever the mesh says.
 * Each connection's flow record says what carried it.
 */
class HboneProtocolSettingTest {

    /** n1's own Node resource as the control plane would send it with {@code protocol}. */
    static Resource n1Node(TwoAgents mesh, HboneProtocol protocol) {
        Resource r = Fixtures.node("n1", "127.0.0.1", mesh.n1.addresses().get("hbone").getPort());
        return r.toBuilder().setVersion(protocol.name()).setNode(r.getNode().toBuilder().setHboneProtocol(protocol))
                .build();
    }

    /** Echoes {@code size} bytes through n1 and returns the protocol of n1's flow record of it. */
    static String echoProtocol(TwoAgents mesh, long size) throws Exception {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        RoundTrip trip = RoundTrip.echo(r.socket(), size, 60);
        assertThat(trip.received()).as("SHA-256 back").isEqualTo(trip.sent());
        NodeRuntime n1 = mesh.n1;
        await().atMost(Duration.ofSeconds(10)).until(() -> n1.telemetry().flows().since(0).stream()
                .anyMatch(f -> f.bytesSent() == size));
        return n1.telemetry().flows().since(0).stream().filter(f -> f.bytesSent() == size).map(FlowRecord::protocol)
                .reduce((a, b) -> a + "," + b).orElseThrow();
    }

    @Test
    void aMeshConfigChangeSwitchesTheProtocolOfNewConnections() throws Exception {
        try (TwoAgents mesh = new TwoAgents(Duration.ofSeconds(5), Optional.empty())) {
            assertThat(echoProtocol(mesh, 1001)).as("no flag, nothing from the mesh: h2").isEqualTo("h2");

            mesh.n1.index().apply(StateUpdates.NODE, List.of(n1Node(mesh, HboneProtocol.HBONE_H3)), List.of());
            assertThat(echoProtocol(mesh, 1002)).as("the mesh says h3").isEqualTo("h3");
            assertThat(counter(mesh.n1, "wisp_hbone_quic_pool_connections_opened")).isEqualTo(1);

            mesh.n1.index().apply(StateUpdates.NODE, List.of(n1Node(mesh, HboneProtocol.HBONE_H2)), List.of());
            assertThat(echoProtocol(mesh, 1003)).as("the mesh says h2 again").isEqualTo("h2");
            assertThat(counter(mesh.n1, "wisp_hbone_quic_pool_connections_opened")).as("no new QUIC connection")
                    .isEqualTo(1);
        }
    }

    @Test
    void theHboneFlagWinsOverTheMeshConfig() throws Exception {
        try (TwoAgents mesh = new TwoAgents(Duration.ofSeconds(5), Optional.of(HboneClient.Mode.H2))) {
            mesh.n1.index().apply(StateUpdates.NODE, List.of(n1Node(mesh, HboneProtocol.HBONE_H3)), List.of());
            assertThat(echoProtocol(mesh, 1004)).as("--hbone h2 given").isEqualTo("h2");
            assertThat(mesh.n1.telemetry().registry().find("wisp_hbone_quic_pool_connections_opened").gauge())
                    .as("pinned to h2: no QUIC pool at all").isNull();
        }
    }

    static double counter(NodeRuntime agent, String gauge) {
        return agent.telemetry().registry().get(gauge).gauge().value();
    }
}
