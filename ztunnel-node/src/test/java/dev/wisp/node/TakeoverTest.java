package dev.wisp.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code wisp node --takeover} in one JVM: a second agent of the node binds the running one's data
 * ports beside it ({@code SO_REUSEPORT}), asks it to hand over, and holds every port, admin ones
 * included, once the old one has drained and stopped. (Under load, with capture, in a local mesh:
 * {@code HitlessUpgradeE2eTest}.)
 */
class TakeoverTest {
    @Test
    void aNewAgentTakesEveryPortOverFromTheRunningOne(@TempDir Path dir) throws Exception {
        NodeSettings settings = TwoAgents.settings(dir, "n1", "127.0.0.1", Duration.ofSeconds(5)).withPorts(
                freePorts());
        try (NodeRuntime old = NodeRuntime.build(settings)) {
            Map<String, InetSocketAddress> ports = old.addresses();
            try (NodeRuntime fresh = NodeRuntime.build(settings.withTakeover(true))) {
                old.handedOver().toCompletableFuture().get(20, TimeUnit.SECONDS);
                assertThat(fresh.addresses()).containsAllEntriesOf(withoutQuic(ports));
                assertThat(NodeRuntimeTest.status(fresh.addresses().get("readiness"), "/healthz/ready"))
                        .isEqualTo(200);
                // The old agent is gone, the data ports still answer: the new agent's.
                for (String data : List.of("hbone", "outbound", "inbound")) {
                    try (Socket s = new Socket()) {
                        s.connect(ports.get(data), 2000);
                        assertThat(s.isConnected()).as(data).isTrue();
                    }
                }
                // Taken over once, the old agent cannot be asked again; the new one now runs the node.
                assertThatThrownBy(old::handOver).isInstanceOf(IllegalStateException.class);
            }
        }
    }

    /** Every port fixed (a take-over needs the running agent's admin port), each free a moment ago. */
    private static NodeSettings.Ports freePorts() throws IOException {
        List<ServerSocket> probes = new ArrayList<>();
        try {
            for (int i = 0; i < 7; i++) {
                probes.add(new ServerSocket(0, 1, InetAddress.ofLiteral("127.0.0.1")));
            }
            int[] p = probes.stream().mapToInt(ServerSocket::getLocalPort).toArray();
            return new NodeSettings.Ports(p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
        } finally {
            for (ServerSocket s : probes) {
                s.close();
            }
        }
    }

    private static Map<String, InetSocketAddress> withoutQuic(Map<String, InetSocketAddress> ports) {
        Map<String, InetSocketAddress> m = new java.util.HashMap<>(ports);
        m.remove("hbone_quic");
        return m;
    }
}
