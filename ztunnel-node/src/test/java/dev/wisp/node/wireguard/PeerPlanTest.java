package dev.wisp.node.wireguard;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.Prefix;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The peers and routes a node derives from the Node resources, strict and permissive. */
class PeerPlanTest {
    static final Key KEY2 = Key.generatePrivate().publicKey();
    static final List<Prefix> OWN = List.of(Prefix.parse("10.1.0.0/24"));
    static final List<Prefix> CLUSTER = List.of(Prefix.parse("10.1.0.0/16"));

    static Node node(String name, String address, String key, String endpoint, String cidr, boolean hbone) {
        Node.Builder b = Node.newBuilder().setName(name).setWireguardPublicKey(key).setWireguardEndpoint(endpoint)
                .setHboneOverWireguard(hbone).addAddresses(ByteString.copyFrom(InetAddress.ofLiteral(address)
                        .getAddress()));
        if (!cidr.isEmpty()) {
            b.addPodCidrs(cidr);
        }
        return b.build();
    }

    static final Node SELF = node("node1", "10.0.0.11", "", "", "10.1.0.0/24", false);
    static final Node WITH_KEY = node("node2", "10.0.0.12", KEY2.toBase64(), "10.0.0.12:51820", "10.1.1.0/24", false);
    static final Node WITHOUT_KEY = node("node3", "10.0.0.13", "", "", "10.1.2.0/24", false);

    @Test
    void strictRoutesPeersThroughTheDeviceAndMakesEveryOtherPodCidrUnreachableOtherwise() {
        PeerPlan p = PeerPlan.of("node1", List.of(SELF, WITH_KEY, WITHOUT_KEY), OWN, CLUSTER, true);
        assertThat(p.peers()).singleElement().satisfies(peer -> {
            assertThat(peer.node()).isEqualTo("node2");
            assertThat(peer.publicKey()).isEqualTo(KEY2);
            assertThat(peer.endpoint()).isEqualTo(new InetSocketAddress("10.0.0.12", 51820));
            // Its address is an allowed source (its HBONE server answering a pod of ours that called
            // it in clear comes through the device) but not routed: HBONE to it stays in clear.
            assertThat(peer.allowedIps()).containsExactly(Prefix.parse("10.1.1.0/24"), Prefix.parse("10.0.0.12/32"));
            assertThat(peer.sentTo()).containsExactly(Prefix.parse("10.1.1.0/24"));
        });
        assertThat(p.routed()).containsExactly(Prefix.parse("10.1.1.0/24"));
        assertThat(p.unreachable()).containsExactlyInAnyOrder(Prefix.parse("10.1.1.0/24"), Prefix.parse(
                "10.1.2.0/24"), Prefix.parse("10.1.0.0/16"));
        assertThat(p.local()).containsExactly(Prefix.parse("10.1.0.0/24"));
        assertThat(p.hboneRouted()).isEmpty();
        assertThat(p.hboneUnreachable()).isEmpty();
        assertThat(p.skipped()).containsExactly("node node3 has no WireGuard key registered yet");
    }

    @Test
    void permissiveLeavesNodesWithoutAPeerToTheNodesOtherRoutes() {
        PeerPlan p = PeerPlan.of("node1", List.of(SELF, WITH_KEY, WITHOUT_KEY), OWN, CLUSTER, false);
        assertThat(p.routed()).containsExactly(Prefix.parse("10.1.1.0/24"));
        assertThat(p.unreachable()).isEmpty();
        assertThat(p.local()).isEmpty();
    }

    @Test
    void hboneOverWireGuardRoutesTheNodeAddressesThroughTheHboneTable() {
        Node self = node("node1", "10.0.0.11", "", "", "10.1.0.0/24", true);
        Node other = node("node2", "10.0.0.12", KEY2.toBase64(), "10.0.0.12:51820", "10.1.1.0/24", true);
        PeerPlan p = PeerPlan.of("node1", List.of(self, other), OWN, CLUSTER, true);
        assertThat(p.peers().getFirst().allowedIps()).containsExactly(Prefix.parse("10.1.1.0/24"), Prefix.parse(
                "10.0.0.12/32"));
        assertThat(p.peers().getFirst().sentTo()).containsExactly(Prefix.parse("10.1.1.0/24"), Prefix.parse(
                "10.0.0.12/32"));
        assertThat(p.hboneRouted()).containsExactly(Prefix.parse("10.0.0.12/32"));
        assertThat(p.hboneUnreachable()).containsExactly(Prefix.parse("10.0.0.12/32"));
    }

    @Test
    void aBadKeyOrEndpointFromTheControlPlaneGivesNoPeerButStaysUnreachableInStrictMode() {
        Node bad = node("node2", "10.0.0.12", "not-a-key", "10.0.0.12:51820", "10.1.1.0/24", false);
        Node badEndpoint = node("node3", "10.0.0.13", KEY2.toBase64(), "somewhere", "10.1.2.0/24", false);
        PeerPlan p = PeerPlan.of("node1", List.of(SELF, bad, badEndpoint), OWN, CLUSTER, true);
        assertThat(p.peers()).isEmpty();
        assertThat(p.routed()).isEmpty();
        assertThat(p.unreachable()).contains(Prefix.parse("10.1.1.0/24"), Prefix.parse("10.1.2.0/24"));
        assertThat(p.skipped()).hasSize(2).allMatch(s -> s.contains("refused"));
    }

    @Test
    void withoutAPodCidrFlagThisNodesOwnCidrsAreThoseItsNodeResourceNames() {
        // As the chart runs the agent: no --wireguard-pod-cidr; the control plane serves the Node's.
        PeerPlan p = PeerPlan.of("node1", List.of(SELF, WITH_KEY, WITHOUT_KEY), List.of(), CLUSTER, true);
        assertThat(p.local()).containsExactly(Prefix.parse("10.1.0.0/24"));
        assertThat(p.unreachable()).contains(Prefix.parse("10.1.0.0/16"));
        // The Node resource wins over a flag that names something else (the control plane refused
        // that claim, or the flag is stale).
        PeerPlan stale = PeerPlan.of("node1", List.of(SELF, WITH_KEY), List.of(Prefix.parse("10.1.9.0/24")), CLUSTER,
                true);
        assertThat(stale.local()).containsExactly(Prefix.parse("10.1.0.0/24"));
    }

    @Test
    void untilItsOwnCidrsAreKnownTheClusterCidrsAreNotMadeUnreachable() {
        // At start (no Node resource yet) and without the flag: making 10.1.0.0/16 unreachable with
        // no "throw" for this node's own pods would cut the node off from them.
        PeerPlan start = PeerPlan.of("node1", List.of(), List.of(), CLUSTER, true);
        assertThat(start.unreachable()).isEmpty();
        assertThat(start.local()).isEmpty();
        assertThat(start.skipped()).singleElement().asString().contains("not made unreachable yet");
        // Other nodes' pod CIDRs are unreachable without a peer all the same.
        Node selfWithout = node("node1", "10.0.0.11", "", "", "", false);
        PeerPlan known = PeerPlan.of("node1", List.of(selfWithout, WITH_KEY, WITHOUT_KEY), List.of(), CLUSTER, true);
        assertThat(known.unreachable()).containsExactlyInAnyOrder(Prefix.parse("10.1.1.0/24"), Prefix.parse(
                "10.1.2.0/24"));
        assertThat(known.routed()).containsExactly(Prefix.parse("10.1.1.0/24"));
    }
}
