package dev.wisp.node.proxy;

import dev.wisp.spiffe.SpiffeId;
import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.ports;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.service;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.api.workload.v1.TunnelProtocol;
import dev.wisp.api.workload.v1.WorkloadStatus;
import dev.wisp.node.Fixtures;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Outbound routing as a pure function of the state. */
class RouteTest {
    final WorkloadIndex index = WorkloadIndex.create();
    final AtomicInteger rr = new AtomicInteger();

    @BeforeEach
    void state() throws Exception {
        index.apply(StateUpdates.NODE, List.of(node("n2", "10.0.0.2", 0), node("n3", "10.0.0.3", 16008)), List.of());
        index.apply(StateUpdates.WORKLOAD, List.of(
                res(workload("e1", "server", "n2", "10.1.0.1").putServices("default/echo.svc", ports(80, 8080))),
                res(workload("e2", "server", "n3", "10.1.0.2").putServices("default/echo.svc", ports(80, 8080))),
                res(workload("e3", "server", "n3", "10.1.0.3").putServices("default/echo.svc", ports(80, 8080))
                        .setStatus(WorkloadStatus.UNHEALTHY)),
                res(workload("plain", "x", "n2", "10.1.0.9").setTunnelProtocol(TunnelProtocol.TUNNEL_NONE)),
                res(workload("wp", "x", "n2", "10.1.0.8").setWaypoint(GatewayAddress.newBuilder()
                        .setAddress(Fixtures.ip("10.2.0.1")).setIdentity("spiffe://cluster.local/ns/default/sa/wp"))),
                res(workload("lost", "x", "n9", "10.1.0.7"))), List.of());
        index.apply(StateUpdates.SERVICE, List.of(service("echo.svc", "10.96.0.1", 80, 0)), List.of());
    }

    Route route(String ip, int port) throws Route.NoRouteException {
        return Route.of(index.snapshot(), new InetSocketAddress(ip, port), k -> rr.getAndIncrement(), 15008);
    }

    @Test
    void serviceVipRoundRobinsOverHealthyEndpointsWithTargetPorts() throws Exception {
        List<String> targets = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            Route r = route("10.96.0.1", 80);
            assertThat(r.hbone()).isTrue();
            assertThat(r.service()).isEqualTo("echo.svc");
            targets.add(Hbone.authority(r.target()) + "@" + Hbone.authority(r.connectTo()));
        }
        assertThat(targets).containsExactly("10.1.0.1:8080@10.0.0.2:15008", "10.1.0.2:8080@10.0.0.3:16008",
                "10.1.0.1:8080@10.0.0.2:15008", "10.1.0.2:8080@10.0.0.3:16008");
    }

    @Test
    void workloadGoesToItsNodeAndExpectsItsIdentities() throws Exception {
        Route r = route("10.1.0.1", 9000);
        assertThat(r.connectTo()).isEqualTo(new InetSocketAddress("10.0.0.2", 15008));
        assertThat(r.target()).isEqualTo(new InetSocketAddress("10.1.0.1", 9000));
        assertThat(r.expectedIdentities()).containsExactlyInAnyOrder(
                SpiffeId.parse("spiffe://cluster.local/ns/default/sa/server"),
                SpiffeId.parse("spiffe://cluster.local/ns/wisp-system/sa/wisp-node.n2"));
        assertThat(r.peerIdentity()).as("the flow's destination identity").contains(SpiffeId.parse(
                "spiffe://cluster.local/ns/default/sa/server"));
    }

    @Test
    void anIpv6DestinationGoesToItsEndpointsAndNodesIpv6AddressesAndAnIpv4OneToTheirIpv4Ones() throws Exception {
        var dualNode = node("n4", "10.0.0.4", 0);
        dualNode = dualNode.toBuilder().setNode(dualNode.getNode().toBuilder().addAddresses(Fixtures.ip("fd00::4")))
                .build();
        var dualService = service("dual.svc", "10.96.0.2", 80, 0);
        dualService = dualService.toBuilder().setService(dualService.getService().toBuilder().addAddresses(Fixtures
                .ip("fd00:96::2"))).build();
        index.apply(StateUpdates.NODE, List.of(dualNode), List.of());
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("d1", "server", "n4", "10.1.0.4").addAddresses(
                Fixtures.ip("fd00:1::4")).putServices("default/dual.svc", ports(80, 8080)))), List.of());
        index.apply(StateUpdates.SERVICE, List.of(dualService), List.of());

        assertThat(List.of(route("fd00:1::4", 9000).target(), route("fd00:1::4", 9000).connectTo())).containsExactly(
                new InetSocketAddress("fd00:1::4", 9000), new InetSocketAddress("fd00::4", 15008));
        Route viaVip6 = route("fd00:96::2", 80);
        assertThat(List.of(viaVip6.target(), viaVip6.connectTo())).containsExactly(new InetSocketAddress("fd00:1::4",
                8080), new InetSocketAddress("fd00::4", 15008));
        Route viaVip4 = route("10.96.0.2", 80);
        assertThat(List.of(viaVip4.target(), viaVip4.connectTo())).containsExactly(new InetSocketAddress("10.1.0.4",
                8080), new InetSocketAddress("10.0.0.4", 15008));
        // A node with an IPv4 address only still carries an IPv6 destination.
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("d2", "server", "n2", "10.1.0.5").addAddresses(
                Fixtures.ip("fd00:1::5")))), List.of());
        assertThat(route("fd00:1::5", 9000).connectTo()).isEqualTo(new InetSocketAddress("10.0.0.2", 15008));
    }

    @Test
    void waypointTakesTheTraffic() throws Exception {
        Route r = route("10.1.0.8", 80);
        assertThat(r.connectTo()).isEqualTo(new InetSocketAddress("10.2.0.1", 15008));
        assertThat(r.expectedIdentities()).containsExactly(SpiffeId.parse("spiffe://cluster.local/ns/default/sa/wp"));
    }

    @Test
    void aServiceWithAWaypointIsTunnelledToItWithTheVipAsTarget() throws Exception {
        index.apply(StateUpdates.SERVICE, List.of(service("echo.svc", "10.96.0.1", 80, 0).toBuilder().setService(
                service("echo.svc", "10.96.0.1", 80, 0).getService().toBuilder().setWaypoint(GatewayAddress
                        .newBuilder().setAddress(Fixtures.ip("10.2.0.1")).setHbonePort(15008).setIdentity(
                                "spiffe://cluster.local/ns/default/sa/wp")))
                .build()), List.of());
        Route r = route("10.96.0.1", 80);
        assertThat(r.hbone()).isTrue();
        assertThat(r.connectTo()).isEqualTo(new InetSocketAddress("10.2.0.1", 15008));
        assertThat(r.target()).as("the original VIP:port, which the waypoint routes by")
                .isEqualTo(new InetSocketAddress("10.96.0.1", 80));
        assertThat(r.expectedIdentities()).containsExactly(SpiffeId.parse("spiffe://cluster.local/ns/default/sa/wp"));
        assertThat(r.peerIdentity()).as("the flow names the waypoint it went through").contains(SpiffeId.parse(
                "spiffe://cluster.local/ns/default/sa/wp"));
    }

    @Test
    void outsideTheMeshIsPlainTcp() throws Exception {
        assertThat(route("192.0.2.1", 443).hbone()).isFalse();
        assertThat(route("192.0.2.1", 443).peerIdentity()).isEmpty();
        assertThat(route("10.1.0.9", 80).hbone()).isFalse();
        assertThat(route("10.1.0.9", 80).connectTo()).isEqualTo(new InetSocketAddress("10.1.0.9", 80));
    }

    @Test
    void noRouteSaysWhy() {
        assertThatThrownBy(() -> route("10.96.0.1", 81)).hasMessageContaining("has no port 81");
        assertThatThrownBy(() -> route("10.1.0.7", 80)).hasMessageContaining("node n9");
    }
}
