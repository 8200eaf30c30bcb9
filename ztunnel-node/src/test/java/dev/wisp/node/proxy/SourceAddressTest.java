package dev.wisp.node.proxy;

import dev.wisp.spiffe.SpiffeId;
import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.Fixtures;
import dev.wisp.node.state.Snapshot;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The one rule for {@code forwarded: for=}: each spoof a client could try, and the cases that are
 * honoured, over IPv4 and over IPv6. The state (dual stack): nodes n1 (10.0.0.1, fd00::1) and n2
 * (10.0.0.2, fd00::2); client {@code sa/client} at 10.1.0.10 and fd00:1::10 on n1; server
 * {@code sa/server} at 10.2.0.10 and fd00:2::10 on n2, whose traffic goes through the waypoint
 * {@code sa/waypoint} at 10.3.0.10 and fd00:3::10 (on n2); service backends behind a second
 * waypoint {@code sa/svc-waypoint} at 10.3.0.20, named only by a service.
 */
class SourceAddressTest {
    static final String TD = "spiffe://cluster.local/ns/default/sa/";
    static final Snapshot STATE = state();

    static Snapshot state() {
        WorkloadIndex index = WorkloadIndex.create();
        try {
            index.apply(StateUpdates.NODE, List.of(dual(node("n1", "10.0.0.1", 15008), "fd00::1"), dual(node("n2",
                    "10.0.0.2", 15008), "fd00::2")), List.of());
            GatewayAddress wp = GatewayAddress.newBuilder().setAddress(Fixtures.ip("10.3.0.10")).setHbonePort(15008)
                    .setIdentity(TD + "waypoint").build();
            GatewayAddress svcWp = GatewayAddress.newBuilder().setAddress(Fixtures.ip("10.3.0.20"))
                    .setHbonePort(15008).setIdentity(TD + "svc-waypoint").build();
            index.apply(StateUpdates.WORKLOAD, List.of(res(workload("client", "client", "n1", "10.1.0.10")
                    .addAddresses(Fixtures.ip("fd00:1::10"))),
                    res(workload("server", "server", "n2", "10.2.0.10").addAddresses(Fixtures.ip("fd00:2::10"))
                            .setWaypoint(wp)),
                    res(workload("waypoint", "waypoint", "n2", "10.3.0.10").addAddresses(Fixtures.ip("fd00:3::10"))),
                    res(workload("svc-waypoint", "svc-waypoint", "n2", "10.3.0.20"))), List.of());
            Resource svc = Fixtures.service("api.default.svc", "10.96.0.1", 80, 8080);
            index.apply(StateUpdates.SERVICE, List.of(svc.toBuilder().setService(svc.getService().toBuilder()
                    .setWaypoint(svcWp)).build()), List.of());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return index.snapshot();
    }

    static Resource dual(Resource node, String address6) {
        return node.toBuilder().setNode(node.getNode().toBuilder().addAddresses(Fixtures.ip(address6))).build();
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', nullValues = "-", textBlock = """
            no claim: the TCP peer                                 | client       | 10.0.0.1 | -            | 10.0.0.1:40000  | PEER
            own workload, own node: honoured                       | client       | 10.0.0.1 | 10.1.0.10:5  | 10.1.0.10:5     | OWN_WORKLOAD
            denied client claims an outside address                | client       | 10.0.0.1 | 10.9.9.9:1   | 10.0.0.1:40000  | CLAIM_IGNORED
            claims another identity's workload                     | client       | 10.0.0.1 | 10.2.0.10:5  | 10.0.0.1:40000  | CLAIM_IGNORED
            right identity, from another node's address            | client       | 10.0.0.2 | 10.1.0.10:5  | 10.0.0.2:40000  | CLAIM_IGNORED
            right identity, from an address that is no node        | client       | 10.1.0.10 | 10.1.0.10:5 | 10.1.0.10:40000 | CLAIM_IGNORED
            a node identity is not its workloads' identity         | node-n1      | 10.0.0.1 | 10.1.0.10:5  | 10.0.0.1:40000  | CLAIM_IGNORED
            plaintext: no certificate, no claim counts             | -            | 10.0.0.1 | 10.1.0.10:5  | 10.0.0.1:40000  | CLAIM_IGNORED
            a workload's waypoint vouches for its client           | waypoint     | 10.3.0.10 | 10.1.0.10:5 | 10.1.0.10:5     | WAYPOINT
            a waypoint vouches for an outside client too           | waypoint     | 10.3.0.10 | 10.9.9.9:1  | 10.9.9.9:1      | WAYPOINT
            a service's waypoint vouches for its client            | svc-waypoint | 10.3.0.20 | 10.1.0.10:5 | 10.1.0.10:5     | WAYPOINT
            a workload behind a waypoint is no waypoint itself     | server       | 10.0.0.2 | 10.1.0.10:5  | 10.0.0.2:40000  | CLAIM_IGNORED
            IPv6: own workload, own node: honoured                 | client       | fd00::1  | [fd00:1::10]:5 | [fd00:1::10]:5 | OWN_WORKLOAD
            IPv6 claim from the own node's IPv4 address: honoured  | client       | 10.0.0.1 | [fd00:1::10]:5 | [fd00:1::10]:5 | OWN_WORKLOAD
            IPv6: claims an outside address                        | client       | fd00::1  | [fd00:9::9]:1  | [fd00::1]:40000 | CLAIM_IGNORED
            IPv6: claims another identity's workload               | client       | fd00::1  | [fd00:2::10]:5 | [fd00::1]:40000 | CLAIM_IGNORED
            IPv6: right identity, from another node's address      | client       | fd00::2  | [fd00:1::10]:5 | [fd00::2]:40000 | CLAIM_IGNORED
            IPv6: right identity, from the other node's IPv4       | client       | 10.0.0.2 | [fd00:1::10]:5 | 10.0.0.2:40000 | CLAIM_IGNORED
            IPv6: right identity, from an address that is no node  | client       | fd00:1::10 | [fd00:1::10]:5 | [fd00:1::10]:40000 | CLAIM_IGNORED
            IPv6: a node identity is not its workloads' identity   | node-n1      | fd00::1  | [fd00:1::10]:5 | [fd00::1]:40000 | CLAIM_IGNORED
            IPv6 plaintext: no claim counts                        | -            | fd00::1  | [fd00:1::10]:5 | [fd00::1]:40000 | CLAIM_IGNORED
            IPv6: a workload's waypoint vouches for its client     | waypoint     | fd00:3::10 | [fd00:1::10]:5 | [fd00:1::10]:5 | WAYPOINT
            IPv6: a workload behind a waypoint is no waypoint      | server       | fd00::2  | [fd00:1::10]:5 | [fd00::2]:40000 | CLAIM_IGNORED
            a mapped claim is the IPv4 address it maps             | client       | 10.0.0.1 | [::ffff:10.1.0.10]:5 | 10.1.0.10:5 | OWN_WORKLOAD
            a mapped claim of another identity's workload          | client       | 10.0.0.1 | [::ffff:10.2.0.10]:5 | 10.0.0.1:40000 | CLAIM_IGNORED
            an IPv4-compatible claim is not the IPv4 workload      | client       | 10.0.0.1 | [::10.1.0.10]:5 | 10.0.0.1:40000 | CLAIM_IGNORED
            the IPv4 digits in an IPv6 claim are not the workload  | client       | fd00::1  | [fd00:0:0:0:0:0:a01:a]:5 | [fd00::1]:40000 | CLAIM_IGNORED
            a scoped claim is not read                             | client       | fd00::1  | [fd00:1::10%1]:5 | [fd00::1]:40000 | PEER
            """)
    void decidesTheSource(String name, String peerSa, String tcpPeer, String claimed, String expected,
            SourceAddress.Basis basis) {
        Optional<SpiffeId> peerId = Optional.ofNullable(peerSa).map(sa -> sa.startsWith("node-")
                ? "spiffe://cluster.local/ns/wisp-system/sa/wisp-node." + sa.substring(5)
                : TD + sa).map(SpiffeId::parse);
        SourceAddress s = SourceAddress.of(STATE, peerId, new InetSocketAddress(tcpPeer, 40000),
                Optional.ofNullable(claimed).flatMap(Hbone::parseAuthority));
        assertThat(s.basis()).isEqualTo(basis);
        assertThat(Hbone.authority(s.address())).isEqualTo(expected);
    }

    /**
     * A dual-stack listener's IPv4 peer may come as an IPv4-mapped IPv6 address: it is the same
     * node, for the honoured case and for the spoof alike, and it is logged and authorized as IPv4.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            the own node, mapped: honoured                  | 10.0.0.1 | [fd00:1::10]:5 | [fd00:1::10]:5 | OWN_WORKLOAD
            another node, mapped: the claim is ignored      | 10.0.0.2 | [fd00:1::10]:5 | 10.0.0.2:40000 | CLAIM_IGNORED
            """)
    void aMappedTcpPeerIsItsIpv4Address(String name, String node, String claimed, String expected,
            SourceAddress.Basis basis) throws Exception {
        byte[] mapped = new byte[16];
        mapped[10] = (byte) 0xff;
        mapped[11] = (byte) 0xff;
        System.arraycopy(InetAddress.ofLiteral(node).getAddress(), 0, mapped, 12, 4);
        InetSocketAddress peer = new InetSocketAddress(Inet6Address.getByAddress(null, mapped, -1), 40000);
        assertThat(peer.getAddress()).isInstanceOf(Inet6Address.class);
        SourceAddress s = SourceAddress.of(STATE, Optional.of(SpiffeId.parse(TD + "client")), peer, Hbone
                .parseAuthority(claimed));
        assertThat(s.basis()).isEqualTo(basis);
        assertThat(Hbone.authority(s.address())).isEqualTo(expected);
    }
}
