package dev.wisp.controlplane.wireguard;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.model.Cidr;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.wireguard.KeyRegistry.Claim;
import dev.wisp.controlplane.wireguard.KeyRegistry.Outcome;
import dev.wisp.controlplane.wireguard.KeyRegistry.Reason;
import java.net.InetAddress;
import java.util.Base64;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The key registry's decisions as a table: who may publish which key, endpoint and pod CIDR. */
class KeyRegistryTest {
    static final String KEY1 = key(1);
    static final String KEY2 = key(2);
    static final String KEY3 = key(3);

    /** node1 10.0.0.11 10.1.0.0/24; node2 10.0.0.12 10.1.1.0/24 (annotated with KEY3); node3 without CIDRs. */
    static final List<NodeDef> NODES = List.of(node("node1", "10.0.0.11", "", "10.1.0.0/24"),
            node("node2", "10.0.0.12", KEY3, "10.1.1.0/24"), node("node3", "10.0.0.13", ""));

    static String key(int b) {
        byte[] k = new byte[32];
        k[0] = (byte) b;
        return Base64.getEncoder().encodeToString(k);
    }

    static NodeDef node(String name, String address, String annotatedKey, String... cidrs) {
        return new NodeDef(new ObjectRef("Node", "", name), List.of(InetAddress.ofLiteral(address)), 0, annotatedKey,
                "", List.of(cidrs));
    }

    /** node2 has registered KEY2 at 10.0.0.12:51820 with its CIDR; node3 registered 10.9.0.0/16. */
    static KeyRegistry registered() {
        KeyRegistry r = accepted(KeyRegistry.empty().register("node2", new Claim(KEY2, "10.0.0.12:51820",
                List.of("10.1.1.0/24")), NODES)).registry();
        return accepted(r.register("node3", new Claim(key(4), "10.0.0.13:51820", List.of("10.9.0.0/16")), NODES))
                .registry();
    }

    static Outcome.Accepted accepted(Outcome o) {
        assertThat(o).isInstanceOf(Outcome.Accepted.class);
        return (Outcome.Accepted) o;
    }

    static Stream<Arguments> refusals() {
        return Stream.of(
                Arguments.of("a node without a Node object", "node9", new Claim(KEY1, "10.0.0.19:51820", List.of()),
                        Reason.UNKNOWN_NODE, "no Node object"),
                Arguments.of("a key that is not base64", "node1", new Claim("not a key", "10.0.0.11:51820", List.of()),
                        Reason.MALFORMED, "not 32 bytes"),
                Arguments.of("an all-zero key", "node1", new Claim(Base64.getEncoder().encodeToString(new byte[32]),
                        "10.0.0.11:51820", List.of()), Reason.MALFORMED, "all zeros"),
                Arguments.of("the key registered for node2", "node1", new Claim(KEY2, "10.0.0.11:51820", List.of()),
                        Reason.KEY_OF_ANOTHER_NODE, "registered for node node2"),
                Arguments.of("the key annotated on node2", "node1", new Claim(KEY3, "10.0.0.11:51820", List.of()),
                        Reason.KEY_OF_ANOTHER_NODE, "annotated on node node2"),
                Arguments.of("an endpoint that is not IP:PORT", "node1", new Claim(KEY1, "node1.example:51820",
                        List.of()), Reason.MALFORMED, "not IP:PORT"),
                Arguments.of("port 0", "node1", new Claim(KEY1, "10.0.0.11:0", List.of()), Reason.MALFORMED,
                        "not IP:PORT"),
                Arguments.of("node2's address as endpoint", "node1", new Claim(KEY1, "10.0.0.12:51821", List.of()),
                        Reason.ENDPOINT_OF_ANOTHER_NODE, "an address of node node2"),
                Arguments.of("an address the node does not have", "node1", new Claim(KEY1, "10.0.0.99:51820",
                        List.of()), Reason.ENDPOINT_NOT_OWN, "not one of its addresses"),
                Arguments.of("node2's declared CIDR", "node1", new Claim(KEY1, "10.0.0.11:51820", List.of(
                        "10.1.1.0/24")), Reason.CIDR_NOT_DECLARED, "not within its Node's podCIDRs"),
                Arguments.of("a CIDR overlapping node2's declared one", "node3", new Claim(key(5), "10.0.0.13:51820",
                        List.of("10.1.0.0/16")), Reason.CIDR_OVERLAPS_ANOTHER_NODE,
                        "overlaps 10.1.0.0/24 of node node1"),
                Arguments.of("a second CIDR outside its declared ones", "node1", new Claim(KEY1, "10.0.0.11:51820",
                        List.of("10.1.0.0/24", "10.9.3.0/24")), Reason.CIDR_NOT_DECLARED, "10.9.3.0/24"),
                Arguments.of("a CIDR that does not parse", "node1", new Claim(KEY1, "10.0.0.11:51820", List.of(
                        "10.1.0.0/33")), Reason.MALFORMED, "prefix length"),
                Arguments.of("hostile text is quoted printable", "node1", new Claim(KEY1, "\u001b[31m:1", List.of()),
                        Reason.MALFORMED, "'?[31m:1'"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("refusals")
    void refuses(String name, String node, Claim claim, Reason reason, String message) {
        KeyRegistry before = registered();
        Outcome o = before.register(node, claim, NODES);
        assertThat(o).isInstanceOfSatisfying(Outcome.Refused.class, f -> {
            assertThat(f.reason()).isEqualTo(reason);
            assertThat(f.message()).contains(message);
        });
        assertThat(before.entries()).containsOnlyKeys("node2", "node3");
    }

    /**
     * Where Node objects are the authority (Kubernetes): a node whose Node declares no CIDR may claim
     * none, even one nobody holds (the directory registry accepts that), and keeps its key; a claim
     * of nothing, or within the node's declared CIDRs, is accepted; revalidation keeps the rule.
     */
    @Test
    void whereNodesDeclareTheCidrsANodeWhoseNodeDeclaresNoneMayClaimNone() {
        Claim unheld = new Claim(key(4), "10.0.0.13:51820", List.of("10.9.0.0/16"));
        accepted(KeyRegistry.empty().register("node3", unheld, NODES));
        KeyRegistry k8s = KeyRegistry.empty(true);
        assertThat(k8s.declaredCidrsOnly()).isTrue();
        assertThat(k8s.register("node3", unheld, NODES)).isInstanceOfSatisfying(Outcome.Refused.class, f -> {
            assertThat(f.reason()).isEqualTo(Reason.CIDR_NOT_DECLARED);
            assertThat(f.message()).isEqualTo("node node3 published the pod CIDR 10.9.0.0/16, but its Node declares "
                    + "no spec.podCIDRs, and here pod CIDRs are taken from Node objects only (is the node IPAM "
                    + "controller on? Otherwise leave --wireguard-pod-cidr out)");
        });
        KeyRegistry r = accepted(k8s.register("node3", new Claim(key(4), "10.0.0.13:51820", List.of()), NODES))
                .registry();
        Outcome.Accepted own = accepted(r.register("node1", new Claim(KEY1, "10.0.0.11:51820", List.of(
                "10.1.0.0/25")), NODES));
        assertThat(own.entry().podCidrs()).containsExactly(Cidr.parse("10.1.0.0/25"));
        Outcome.Accepted none = accepted(own.registry().register("node1", new Claim(KEY1, "10.0.0.11:51820",
                List.of()), NODES));
        assertThat(none.entry().podCidrs()).isEmpty();
        KeyRegistry again = none.registry().revalidate(NODES).registry();
        assertThat(again.declaredCidrsOnly()).isTrue();
        assertThat(again.entries()).containsOnlyKeys("node3", "node1");
        assertThat(again.register("node3", unheld, NODES)).isInstanceOf(Outcome.Refused.class);
    }

    @Test
    void nodeWithoutDeclaredCidrsMayNotTakeAnotherNodesRegisteredCidr() {
        NodeDef node4 = node("node4", "10.0.0.14", "");
        List<NodeDef> nodes = Stream.concat(NODES.stream(), Stream.of(node4)).toList();
        Outcome o = registered().register("node4", new Claim(key(6), "10.0.0.14:51820", List.of("10.9.128.0/17")),
                nodes);
        assertThat(o).isInstanceOfSatisfying(Outcome.Refused.class, f -> {
            assertThat(f.reason()).isEqualTo(Reason.CIDR_OVERLAPS_ANOTHER_NODE);
            assertThat(f.message()).isEqualTo("node node4 published the pod CIDR 10.9.128.0/17, which overlaps "
                    + "10.9.0.0/16 of node node3");
        });
    }

    @Test
    void acceptsAnOwnClaimNormalisedAndReplacesTheNodesPreviousEntry() {
        KeyRegistry r = registered();
        Outcome.Accepted a = accepted(r.register("node1", new Claim(KEY1, "10.0.0.11:51820", List.of("10.1.0.7/24")),
                NODES));
        assertThat(a.changed()).isTrue();
        assertThat(a.entry().podCidrs()).containsExactly(Cidr.parse("10.1.0.0/24"));
        assertThat(a.entry().endpointText()).isEqualTo("10.0.0.11:51820");
        assertThat(a.registry().entries()).containsOnlyKeys("node2", "node3", "node1");

        Outcome.Accepted same = accepted(a.registry().register("node1", new Claim(KEY1, "10.0.0.11:51820", List.of(
                "10.1.0.0/24")), NODES));
        assertThat(same.changed()).isFalse();
        assertThat(same.registry()).isSameAs(a.registry());

        Outcome.Accepted rotated = accepted(a.registry().register("node1", new Claim(key(7), "10.0.0.11:51821",
                List.of("10.1.0.0/24")), NODES));
        assertThat(rotated.changed()).isTrue();
        assertThat(rotated.registry().entries().get("node1").publicKey()).isEqualTo(key(7));
    }

    @Test
    void dualStackNodesPublishTheirIpv6PodCidrButNotAnotherNodes() {
        NodeDef node1 = new NodeDef(new ObjectRef("Node", "", "node1"), List.of(InetAddress.ofLiteral("10.0.0.11"),
                InetAddress.ofLiteral("fd00::11")), 0, "", "", List.of("10.1.0.0/24", "fd00:1:0::/64"));
        NodeDef node2 = new NodeDef(new ObjectRef("Node", "", "node2"), List.of(InetAddress.ofLiteral("10.0.0.12"),
                InetAddress.ofLiteral("fd00::12")), 0, "", "", List.of("10.1.1.0/24", "fd00:1:1::/64"));
        NodeDef node3 = node("node3", "10.0.0.13", "");
        List<NodeDef> nodes = List.of(node1, node2, node3);
        // Its own IPv4 and IPv6 pod CIDRs, the endpoint staying IPv4: accepted as declared.
        Outcome.Accepted a = accepted(KeyRegistry.empty().register("node1", new Claim(KEY1, "10.0.0.11:51820",
                List.of("10.1.0.0/24", "fd00:1:0::/64")), nodes));
        assertThat(a.entry().podCidrs()).containsExactly(Cidr.parse("10.1.0.0/24"), Cidr.parse("fd00:1::/64"));
        // node2 claiming node1's IPv6 pod CIDR beside its own IPv4 one: not declared for node2.
        assertThat(a.registry().register("node2", new Claim(KEY2, "10.0.0.12:51820", List.of("10.1.1.0/24",
                "fd00:1:0::/64")), nodes)).isInstanceOfSatisfying(Outcome.Refused.class, f -> {
                    assertThat(f.reason()).isEqualTo(Reason.CIDR_NOT_DECLARED);
                    assertThat(f.message()).contains(Cidr.parse("fd00:1::/64").toString());
                });
        // node3 declares nothing: an IPv6 prefix holding node1's declared one overlaps it.
        assertThat(a.registry().register("node3", new Claim(KEY3, "10.0.0.13:51820", List.of("fd00:1::/48")),
                nodes)).isInstanceOfSatisfying(Outcome.Refused.class, f -> {
                    assertThat(f.reason()).isEqualTo(Reason.CIDR_OVERLAPS_ANOTHER_NODE);
                    assertThat(f.message()).contains("of node node1");
                });
        // node2's own pair is accepted, and the registry holds both nodes' IPv6 prefixes apart.
        Outcome.Accepted b = accepted(a.registry().register("node2", new Claim(KEY2, "10.0.0.12:51820", List.of(
                "10.1.1.0/24", "fd00:1:1::/64")), nodes));
        assertThat(b.registry().entries().get("node2").podCidrs()).containsExactly(Cidr.parse("10.1.1.0/24"), Cidr
                .parse("fd00:1:1::/64"));
        assertThat(b.registry().entries().get("node1").podCidrs()).contains(Cidr.parse("fd00:1::/64"));
    }

    @Test
    void aNodeRotatesItsOwnKeyAndNoOtherNodeMayTakeTheNewOrTheOldOne() {
        KeyRegistry r = accepted(registered().register("node1", new Claim(KEY1, "10.0.0.11:51820", List.of(
                "10.1.0.0/24")), NODES)).registry();
        // node1 rotates: its own new key is accepted and replaces the old one.
        Outcome.Accepted rotated = accepted(r.register("node1", new Claim(key(8), "10.0.0.11:51820", List.of(
                "10.1.0.0/24")), NODES));
        assertThat(rotated.changed()).isTrue();
        assertThat(rotated.entry().publicKey()).isEqualTo(key(8));
        KeyRegistry after = rotated.registry();
        // Another node claiming node1's new key, or its old one (peers may still hold it), is refused.
        assertThat(after.register("node3", new Claim(key(8), "10.0.0.13:51820", List.of()), NODES))
                .isInstanceOfSatisfying(Outcome.Refused.class, f -> {
                    assertThat(f.reason()).isEqualTo(Reason.KEY_OF_ANOTHER_NODE);
                    assertThat(f.message()).contains("registered for node node1");
                });
        assertThat(after.register("node3", new Claim(KEY1, "10.0.0.13:51820", List.of()), NODES))
                .isInstanceOfSatisfying(Outcome.Refused.class, f -> {
                    assertThat(f.reason()).isEqualTo(Reason.KEY_OF_ANOTHER_NODE);
                    assertThat(f.message()).contains("formerly registered for node node1");
                });
        // A rotation cannot take another node's key either, and node1 keeps its entry.
        assertThat(after.register("node1", new Claim(KEY2, "10.0.0.11:51820", List.of("10.1.0.0/24")), NODES))
                .isInstanceOfSatisfying(Outcome.Refused.class, f -> assertThat(f.reason()).isEqualTo(
                        Reason.KEY_OF_ANOTHER_NODE));
        assertThat(after.entries().get("node1").publicKey()).isEqualTo(key(8));
        // node1 may go back to its own old key; a revalidation keeps what node1 replaced.
        assertThat(after.register("node1", new Claim(KEY1, "10.0.0.11:51820", List.of("10.1.0.0/24")), NODES))
                .isInstanceOf(Outcome.Accepted.class);
        KeyRegistry revalidated = after.revalidate(NODES).registry();
        assertThat(revalidated.register("node3", new Claim(KEY1, "10.0.0.13:51820", List.of()), NODES))
                .isInstanceOf(Outcome.Refused.class);
    }

    @Test
    void aNodeRemembersOnlyItsLastReplacedKeys() {
        KeyRegistry r = registered();
        for (int i = 0; i <= KeyRegistry.RETIRED_PER_NODE + 1; i++) {
            r = accepted(r.register("node1", new Claim(key(20 + i), "10.0.0.11:51820", List.of("10.1.0.0/24")),
                    NODES)).registry();
        }
        // key(20) was replaced more than RETIRED_PER_NODE rotations ago; key(21) was not.
        assertThat(r.register("node3", new Claim(key(20), "10.0.0.13:51820", List.of()), NODES))
                .isInstanceOf(Outcome.Accepted.class);
        assertThat(r.register("node3", new Claim(key(21), "10.0.0.13:51820", List.of()), NODES))
                .isInstanceOf(Outcome.Refused.class);
    }

    @Test
    void firstHolderKeepsAKeyAndTheLaterClaimantIsRefused() {
        List<NodeDef> nodes = List.of(node("a", "10.0.0.1", ""), node("b", "10.0.0.2", ""));
        KeyRegistry r = accepted(KeyRegistry.empty().register("a", new Claim(KEY1, "10.0.0.1:1", List.of()), nodes))
                .registry();
        assertThat(r.register("b", new Claim(KEY1, "10.0.0.2:1", List.of()), nodes))
                .isInstanceOf(Outcome.Refused.class);
        assertThat(r.entries().get("a").publicKey()).isEqualTo(KEY1);
    }

    @Test
    void revalidationDropsEntriesTheChangedModelNoLongerAllows() {
        KeyRegistry r = registered();
        List<NodeDef> withoutNode3 = NODES.subList(0, 2);
        KeyRegistry.Revalidated v = r.revalidate(withoutNode3);
        assertThat(v.registry().entries()).containsOnlyKeys("node2");
        assertThat(v.dropped()).singleElement().satisfies(d -> {
            assertThat(d.node()).isEqualTo("node3");
            assertThat(d.reason()).isEqualTo(Reason.UNKNOWN_NODE);
        });
        assertThat(r.revalidate(NODES).registry()).isSameAs(r);
    }
}
