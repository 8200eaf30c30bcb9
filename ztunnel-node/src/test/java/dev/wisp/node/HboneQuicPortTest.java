package dev.wisp.node;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** HBONE over HTTP/3 shares the HBONE port's number on UDP; a taken UDP twin must not stop the agent. */
class HboneQuicPortTest {
    @TempDir
    Path dir;

    @Test
    void aFixedHbonePortWhoseUdpTwinIsTakenServesHttp2Only() throws Exception {
        InetAddress at = InetAddress.ofLiteral("127.0.0.21");
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, at)) {
            port = probe.getLocalPort();
        }
        try (DatagramSocket taken = new DatagramSocket(new InetSocketAddress(at, port))) {
            NodeSettings s = TwoAgents.settings(dir, "n1", "127.0.0.21", Duration.ZERO);
            NodeSettings.Ports e = s.ports();
            s = s.withPorts(new NodeSettings.Ports(e.outbound(), e.inboundPlaintext(), port, e.socks5(), e.admin(),
                    e.metrics(), e.readiness()));
            try (NodeRuntime agent = NodeRuntime.build(s, Optional.empty())) {
                assertThat(agent.addresses().get("hbone")).isEqualTo(new InetSocketAddress(at, port));
                assertThat(agent.addresses()).doesNotContainKey("hbone_quic");
                assertThat(taken.getLocalPort()).isEqualTo(port);
            }
        }
    }

    @Test
    void anEphemeralHbonePortGetsItsUdpTwin() throws Exception {
        NodeSettings s = TwoAgents.settings(dir, "n2", "127.0.0.22", Duration.ZERO);
        try (NodeRuntime agent = NodeRuntime.build(s, Optional.empty())) {
            InetSocketAddress tcp = agent.addresses().get("hbone");
            assertThat(agent.addresses().get("hbone_quic")).isNotNull().extracting(InetSocketAddress::getPort)
                    .isEqualTo(tcp.getPort());
        }
    }
}
