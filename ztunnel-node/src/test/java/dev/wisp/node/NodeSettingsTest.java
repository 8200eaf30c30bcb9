package dev.wisp.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.node.NodeSettings.Ports;
import dev.wisp.node.NodeSettings.Source;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class NodeSettingsTest {
    static final Source STANDALONE = new Source.Standalone(Path.of("state.yaml"), Path.of("ca"));

    @Test
    void defaultsAreZtunnels() {
        NodeSettings s = NodeSettings.of("node1", STANDALONE);
        assertThat(s.ports()).isEqualTo(new Ports(15001, 15006, 15008, 15080, 15000, 15020, 15021));
        assertThat(s.trustDomain()).isEqualTo("cluster.local");
        assertThat(s.bindAddress()).isEqualTo(InetAddress.ofLiteral("0.0.0.0"));
        assertThat(s.drainTimeout()).isEqualTo(Duration.ofSeconds(30));
        assertThat(s.idleTimeout()).isEqualTo(Duration.ofMinutes(5));
        assertThat(s.connectTimeout()).isEqualTo(Duration.ofSeconds(10));
        assertThat(s.streamsPerConnection()).isEqualTo(100);
        assertThat(s.workerThreads()).isZero();
        assertThat(s.capture()).isEmpty();
        assertThat(s.socks5Workload()).isEmpty();
        assertThatThrownBy(() -> s.logLevels().set("ROOT", "debug")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not supported by this launcher");
    }

    @Test
    void eachWithChangesOnlyItsSetting() {
        NodeSettings base = NodeSettings.of("node1", STANDALONE);
        NodeSettings changed = base.withDrainTimeout(Duration.ofSeconds(1)).withWorkerThreads(2).withSocks5Workload(
                "pod-a").withFlowsPort(4244).withDns(DNS).withTakeover(true);
        assertThat(base.flowsPort()).isEmpty();
        assertThat(base.dns()).isEmpty();
        assertThat(changed).isEqualTo(new NodeSettings("node1", "cluster.local", STANDALONE, base.bindAddress(),
                Ports.ZTUNNEL, Optional.empty(), Optional.of("pod-a"), Duration.ofSeconds(1), base.idleTimeout(),
                100, 2, base.transport(), base.connectTimeout(), base.logLevels(), java.util.OptionalInt.of(4244),
                Optional.empty(), base.hboneProtocol(), Optional.of(DNS), base.workloadLimits(), true));
        assertThat(base.takeover()).isFalse();
    }

    static final NodeSettings.Dns DNS = new NodeSettings.Dns(NodeSettings.Dns.DEFAULT_PORT,
            new java.net.InetSocketAddress("10.96.0.53", 53));

    @Test
    void aDnsUpstreamNeedsAnAddressAndAPort() {
        assertThatThrownBy(() -> new NodeSettings.Dns(15053, java.net.InetSocketAddress.createUnresolved("dns", 53)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs an IP address");
        assertThatThrownBy(() -> new NodeSettings.Dns(15053, new java.net.InetSocketAddress("10.96.0.53", 0)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void portsReadAndWriteTheCommandLineForm() {
        assertThat(Ports.ZTUNNEL.toString()).isEqualTo("15001,15006,15008,15080,15000,15020,15021");
        assertThat(Ports.parse("1, 2,3,4,5,6,7")).isEqualTo(new Ports(1, 2, 3, 4, 5, 6, 7));
        assertThat(Ports.parse(Ports.EPHEMERAL.toString())).isEqualTo(Ports.EPHEMERAL);
        assertThat(Ports.EPHEMERAL.hboneOrDefault()).as("the HBONE port dialed on nodes that name none")
                .isEqualTo(15008);
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {"1,2|needs 7 comma-separated ports", "1,2,3,4,5,6,7,8|needs 7",
            "1,2,3,x,5,6,7|'x' is not a port number", "1,2,3,4,5,6,65536|port 65536 is outside 0-65535",
            "1,2,3,4,5,6,|'' is not a port number"})
    void badPortListsAreRefusedByName(String list, String message) {
        assertThatThrownBy(() -> Ports.parse(list)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(message);
    }

    @Test
    void captureNeedsFixedRedirectPorts() {
        NodeSettings.Capture capture = new NodeSettings.Capture(Path.of("pods"), NodeSettings.DEFAULT_PIN_ROOT,
                Optional.empty());
        assertThat(NodeSettings.of("node1", STANDALONE).withCapture(capture).capture()).contains(capture);
        assertThatThrownBy(() -> NodeSettings.of("node1", STANDALONE).withPorts(Ports.EPHEMERAL).withCapture(
                capture)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining(
                        "capture needs fixed outbound and inbound ports");
    }

    @Test
    void nonsensicalSettingsAreRefused() {
        NodeSettings s = NodeSettings.of("node1", STANDALONE);
        assertThatThrownBy(() -> NodeSettings.of(" ", STANDALONE)).hasMessageContaining("node name");
        assertThatThrownBy(() -> s.withTrustDomain("")).hasMessageContaining("trust domain");
        assertThatThrownBy(() -> s.withDrainTimeout(Duration.ofSeconds(-1))).hasMessageContaining("drain PT-1S");
        assertThat(s.withDrainTimeout(Duration.ZERO).drainTimeout()).isZero();
        assertThatThrownBy(() -> s.withWorkerThreads(-1)).hasMessageContaining("worker threads");
        assertThatThrownBy(() -> s.withPool(0, Duration.ofMinutes(1))).hasMessageContaining("at least 1, not 0");
        assertThatThrownBy(() -> s.withPool(1, Duration.ofSeconds(-1))).hasMessageContaining("idle PT-1S");
        NodeSettings handshakeEach = s.withPool(1, Duration.ZERO);
        assertThat(handshakeEach.streamsPerConnection()).isEqualTo(1);
        assertThat(handshakeEach.idleTimeout()).isZero();
        assertThatThrownBy(() -> NodeSettings.of(null, STANDALONE)).isInstanceOf(NullPointerException.class)
                .hasMessage("nodeName");
    }

    @Test
    void aControlPlaneAddressIsHostAndPort() {
        Source.ControlPlane cp = Source.ControlPlane.parse("[fd00::2]:15012", Path.of("t"), Path.of("b"));
        assertThat(cp.host()).isEqualTo("fd00::2");
        assertThat(cp.port()).isEqualTo(15012);
        assertThatThrownBy(() -> Source.ControlPlane.parse("10.0.0.2", Path.of("t"), Path.of("b")))
                .hasMessageContaining("'10.0.0.2' is not HOST:PORT");
        assertThatThrownBy(() -> Source.ControlPlane.parse("10.0.0.2:0", Path.of("t"), Path.of("b")))
                .hasMessageContaining("outside 1-65535");
    }
}
