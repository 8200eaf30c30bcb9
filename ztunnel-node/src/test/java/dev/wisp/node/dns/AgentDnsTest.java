package dev.wisp.node.dns;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.Fixtures;
import dev.wisp.node.NodeRuntime;
import dev.wisp.node.NodeSettings;
import dev.wisp.node.state.StateUpdates;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An agent built with {@link NodeSettings#withDns} serves its state's names on its DNS port and stops at drain. */
class AgentDnsTest {

    static byte[] ask(InetSocketAddress proxy, byte[] query) throws Exception {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
            s.setSoTimeout(10_000);
            s.send(new DatagramPacket(query, query.length, proxy));
            byte[] buf = new byte[2048];
            DatagramPacket p = new DatagramPacket(buf, buf.length);
            s.receive(p);
            return Arrays.copyOf(buf, p.getLength());
        }
    }

    @Test
    void theAgentsDnsPortAnswersItsStateAndRelaysTheRest(@TempDir Path dir) throws Exception {
        Path state = dir.resolve("state.yaml");
        Files.writeString(state, "resources: []\n");
        try (UpstreamStub upstream = new UpstreamStub()) {
            NodeSettings settings = NodeSettings.of("n1", new NodeSettings.Source.Standalone(state, dir.resolve("ca")))
                    .withBindAddress(InetAddress.getLoopbackAddress()).withPorts(NodeSettings.Ports.EPHEMERAL)
                    .withWorkerThreads(1).withDns(new NodeSettings.Dns(0, upstream.address()));
            try (NodeRuntime agent = NodeRuntime.build(settings)) {
                agent.index().apply(StateUpdates.SERVICE, List.of(Fixtures.service("server.default.svc.cluster.local",
                        "10.96.0.10", 80, 8080)), List.of());
                InetSocketAddress dns = agent.addresses().get("dns");
                assertThat(DnsWire.addresses(ask(dns, DnsWire.query(1, "server.default.svc.cluster.local",
                        DnsMessage.TYPE_A)))).containsExactly(InetAddress.ofLiteral("10.96.0.10"));
                assertThat(DnsWire.addresses(ask(dns, DnsWire.query(2, "example.org", DnsMessage.TYPE_A))))
                        .containsExactly(UpstreamStub.ADDRESS);
                assertThat(upstream.udpQueries.get()).isEqualTo(1);
            }
        }
    }
}
