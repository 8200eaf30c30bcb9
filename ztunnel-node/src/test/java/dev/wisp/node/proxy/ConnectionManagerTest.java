package dev.wisp.node.proxy;

import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.principalPolicy;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.sourceIpPolicy;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.MtlsMode;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.state.InvalidResourceException;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.spiffe.SpiffeId;
import io.netty.channel.embedded.EmbeddedChannel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Open inbound connections decided again on a state change: which are closed, and how that is recorded. */
class ConnectionManagerTest {
    static final String CLIENT = "spiffe://cluster.local/ns/default/sa/client";
    static final InetSocketAddress SERVER = new InetSocketAddress(InetAddress.ofLiteral("10.1.2.10"), 8080);
    static final InetSocketAddress SERVER_OTHER_PORT = new InetSocketAddress(InetAddress.ofLiteral("10.1.2.10"), 9090);
    static final InetAddress CLIENT_IP = InetAddress.ofLiteral("10.1.1.10");
    static final ConnectionManager.Basis MTLS = new ConnectionManager.Basis(Optional.of(SpiffeId.parse(CLIENT)),
            CLIENT_IP, SERVER);
    static final ConnectionManager.Basis PLAIN = new ConnectionManager.Basis(Optional.empty(), CLIENT_IP, SERVER);
    static final ConnectionManager.Basis PLAIN_OTHER_PORT = new ConnectionManager.Basis(Optional.empty(),
            CLIENT_IP, SERVER_OTHER_PORT);

    static WorkloadIndex state(UnaryOperator<Workload.Builder> server, Resource... more)
            throws InvalidResourceException {
        WorkloadIndex index = WorkloadIndex.create();
        index.apply(StateUpdates.NODE, List.of(node("n2", "192.168.0.2", 15008)), List.of());
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("client", "client", "n1", "10.1.1.10")),
                res(server.apply(workload("server", "server", "n2", "10.1.2.10")))), List.of());
        List<Resource> policies = new ArrayList<>(List.of(more));
        if (!policies.isEmpty()) {
            index.apply(StateUpdates.AUTHORIZATION, policies, List.of());
        }
        return index;
    }

    static Stream<Arguments> cases() {
        Resource denyClient = principalPolicy("deny", Action.DENY, "cluster.local/ns/default/sa/client");
        Resource denyOther = principalPolicy("deny", Action.DENY, "cluster.local/ns/other/sa/x");
        Resource allowOther = principalPolicy("allow", Action.ALLOW, "cluster.local/ns/other/sa/x");
        Resource denyIp = sourceIpPolicy("no-ip", Action.DENY, "10.1.1.10");
        UnaryOperator<Workload.Builder> same = w -> w;
        UnaryOperator<Workload.Builder> strict = w -> w.setMtlsMode(MtlsMode.STRICT);
        UnaryOperator<Workload.Builder> port8080Strict = w -> w.setMtlsMode(MtlsMode.PERMISSIVE)
                .putPortMtls(8080, MtlsMode.STRICT);
        UnaryOperator<Workload.Builder> strictBut8080 = w -> w.setMtlsMode(MtlsMode.STRICT)
                .putPortMtls(8080, MtlsMode.PERMISSIVE);
        return Stream.of(
                Arguments.of("no policy", MTLS, same, List.of(), null),
                Arguments.of("DENY on the client's principal", MTLS, same, List.of(denyClient),
                        "denied by DENY policy default/deny"),
                Arguments.of("DENY on another principal", MTLS, same, List.of(denyOther), null),
                Arguments.of("ALLOW for another principal only", MTLS, same, List.of(allowOther),
                        "denied: no ALLOW policy matched"),
                Arguments.of("DENY on the source address, plaintext", PLAIN, same, List.of(denyIp),
                        "denied by DENY policy default/no-ip"),
                Arguments.of("workload became STRICT, plaintext", PLAIN, strict, List.of(), "requires mTLS"),
                Arguments.of("workload became STRICT, mTLS", MTLS, strict, List.of(), null),
                Arguments.of("port-level STRICT on the connection's port", PLAIN, port8080Strict, List.of(),
                        "requires mTLS"),
                Arguments.of("port-level STRICT on another port", PLAIN_OTHER_PORT, port8080Strict, List.of(), null),
                Arguments.of("STRICT but PERMISSIVE on the connection's port", PLAIN, strictBut8080, List.of(), null),
                Arguments.of("STRICT, PERMISSIVE only on another port", PLAIN_OTHER_PORT, strictBut8080, List.of(),
                        "requires mTLS"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void recheck(String title, ConnectionManager.Basis basis, UnaryOperator<Workload.Builder> server,
            List<Resource> policies, String expectedDenial) throws Exception {
        WorkloadIndex index = state(server, policies.toArray(Resource[]::new));
        Optional<Outcome.Denied> d = ConnectionManager.recheck(index.snapshot(), "n2", Set.of(15008), basis);
        if (expectedDenial == null) {
            assertThat(d).as(title).isEmpty();
        } else {
            assertThat(d).as(title).isPresent();
            assertThat(d.get().reason()).contains(expectedDenial).endsWith(ConnectionManager.WHILE_OPEN);
        }
    }

    @Test
    void aWorkloadThatLeftTheStateIsNotADenial() throws Exception {
        WorkloadIndex index = state(w -> w);
        index.apply(StateUpdates.WORKLOAD, List.of(), List.of("server"));
        assertThat(ConnectionManager.recheck(index.snapshot(), "n2", Set.of(), PLAIN)).isEmpty();
    }

    @Test
    void aDenyWrittenWhileOpenClosesTheConnectionAndRecordsTheDenial() throws Exception {
        WorkloadIndex index = state(w -> w);
        Telemetry telemetry = new Telemetry();
        ConnectionManager m = ConnectionManager.create("n2", index, Set.of(15008));
        EmbeddedChannel denied = new EmbeddedChannel();
        EmbeddedChannel plain = new EmbeddedChannel();
        m.track(MTLS, index.snapshot(), flow(telemetry, MTLS), denied);
        m.track(PLAIN, index.snapshot(), flow(telemetry, PLAIN), plain);
        assertThat(m.openConnections()).isEqualTo(2);

        index.apply(StateUpdates.AUTHORIZATION, List.of(principalPolicy("deny", Action.DENY,
                "cluster.local/ns/default/sa/client")), List.of());
        denied.runPendingTasks();
        plain.runPendingTasks();

        assertThat(denied.isOpen()).isFalse();
        assertThat(plain.isOpen()).as("a plaintext connection has no principal: the DENY does not match it").isTrue();
        assertThat(m.openConnections()).isEqualTo(1);
        assertThat(m.closedByPolicy()).isEqualTo(1);
        List<FlowRecord> records = telemetry.flows().since(0);
        assertThat(records).singleElement().satisfies(r -> {
            assertThat(r.verdict()).isEqualTo(FlowRecord.DENIED);
            assertThat(r.reason()).isEqualTo("denied by DENY policy default/deny" + ConnectionManager.WHILE_OPEN);
        });
        assertThat(telemetry.scrape()).contains("istio_tcp_connections_closed_total{")
                .containsPattern("istio_tcp_connections_closed_total\\{[^}]*response_flags=\"DENY\"[^}]*\\} 1.0");
    }

    @Test
    void aConnectionDecidedOnAnOlderStateIsCheckedWhenTracked() throws Exception {
        WorkloadIndex index = state(w -> w);
        var decidedOn = index.snapshot();
        ConnectionManager m = ConnectionManager.create("n2", index, Set.of(15008));
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("server", "server", "n2", "10.1.2.10")
                .setMtlsMode(MtlsMode.STRICT))), List.of());
        Telemetry telemetry = new Telemetry();
        EmbeddedChannel ch = new EmbeddedChannel();
        m.track(PLAIN, decidedOn, flow(telemetry, PLAIN), ch);
        ch.runPendingTasks();
        assertThat(ch.isOpen()).isFalse();
        assertThat(telemetry.flows().since(0)).singleElement()
                .satisfies(r -> assertThat(r.reason()).contains("requires mTLS (PeerAuthentication STRICT)"));
    }

    @Test
    void aClosedConnectionLeavesTheRegistry() throws Exception {
        WorkloadIndex index = state(w -> w);
        ConnectionManager m = ConnectionManager.create("n2", index, Set.of(15008));
        EmbeddedChannel ch = new EmbeddedChannel();
        m.track(MTLS, index.snapshot(), flow(new Telemetry(), MTLS), ch);
        ch.close();
        assertThat(m.openConnections()).isZero();
    }

    private static Telemetry.Flow flow(Telemetry t, ConnectionManager.Basis b) {
        ConnectionLabels labels = new ConnectionLabels("destination", Optional.empty(), b.peerId(), Optional.empty(),
                Optional.empty(), "", b.peerId().isPresent());
        return t.open("inbound", labels, new InetSocketAddress(b.source(), 40000), b.target(), null);
    }
}
