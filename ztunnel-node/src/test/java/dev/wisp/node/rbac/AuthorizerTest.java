package dev.wisp.node.rbac;

import dev.wisp.spiffe.SpiffeId;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.Address;
import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Group;
import dev.wisp.api.workload.v1.Match;
import dev.wisp.api.workload.v1.Rules;
import dev.wisp.api.workload.v1.Scope;
import dev.wisp.api.workload.v1.StringMatch;
import java.net.InetAddress;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Istio's L4 AuthorizationPolicy semantics, case by case. */
class AuthorizerTest {
    static final String CLIENT = "spiffe://cluster.local/ns/default/sa/client";
    static final String OTHER = "spiffe://cluster.local/ns/other/sa/robot";

    static ConnectionAttributes conn(String principal, String srcIp, String dstIp, int port) {
        return new ConnectionAttributes(InetAddress.ofLiteral(srcIp),
                Optional.ofNullable(principal).map(SpiffeId::parse),
                InetAddress.ofLiteral(dstIp), port);
    }

    static final ConnectionAttributes C = conn(CLIENT, "10.1.1.10", "10.1.2.10", 8080);
    static final ConnectionAttributes PLAIN = conn(null, "10.1.1.10", "10.1.2.10", 8080);

    static StringMatch exact(String s) {
        return StringMatch.newBuilder().setExact(s).build();
    }

    static StringMatch prefix(String s) {
        return StringMatch.newBuilder().setPrefix(s).build();
    }

    static StringMatch suffix(String s) {
        return StringMatch.newBuilder().setSuffix(s).build();
    }

    static StringMatch presence() {
        return StringMatch.newBuilder().setPresence(true).build();
    }

    /** {@code ::ffff:<v4>} as an {@link java.net.Inet6Address} (which {@code ofLiteral} would make IPv4). */
    static InetAddress mapped(String v4) {
        byte[] a = new byte[16];
        a[10] = (byte) 0xff;
        a[11] = (byte) 0xff;
        System.arraycopy(InetAddress.ofLiteral(v4).getAddress(), 0, a, 12, 4);
        try {
            InetAddress m = java.net.Inet6Address.getByAddress(null, a, -1);
            assertThat(m.getAddress()).hasSize(16);
            return m;
        } catch (java.net.UnknownHostException e) {
            throw new AssertionError(e);
        }
    }

    static Address cidr(String ip, int len) {
        return Address.newBuilder().setAddress(ByteString.copyFrom(InetAddress.ofLiteral(ip).getAddress()))
                .setLength(len).build();
    }

    static Authorization policy(String name, Action action, Match... andedRules) {
        Group.Builder g = Group.newBuilder();
        for (Match m : andedRules) {
            g.addRules(Rules.newBuilder().addMatches(m));
        }
        return Authorization.newBuilder().setName(name).setNamespace("default").setScope(Scope.NAMESPACE)
                .setAction(action).addGroups(g).build();
    }

    static Match.Builder m() {
        return Match.newBuilder();
    }

    /**
     * A case with one ALLOW policy whose single rule is {@code match}: the verdict names it when the
     * connection matches, and is "no ALLOW policy matched" when it does not.
     */
    static Arguments oneAllow(String name, ConnectionAttributes c, Match.Builder match, boolean allowed) {
        return Arguments.of(name, c, List.of(policy("under-test", Action.ALLOW, match.build())), allowed, allowed
                ? "allowed by ALLOW policy default/under-test"
                : "denied: no ALLOW policy matched");
    }

    static Stream<Arguments> cases() {
        Authorization allowClient = policy("allow-client", Action.ALLOW, m().addPrincipals(exact(
                "cluster.local/ns/default/sa/client")).build());
        Authorization allowOther = policy("allow-other", Action.ALLOW, m().addPrincipals(exact(
                "cluster.local/ns/other/sa/robot")).build());
        Authorization denyClient = policy("deny-client", Action.DENY, m().addPrincipals(exact(
                "cluster.local/ns/default/sa/client")).build());
        Authorization allowAll = Authorization.newBuilder().setName("allow-all").setNamespace("default")
                .setAction(Action.ALLOW).addGroups(Group.getDefaultInstance()).build();
        Authorization allowNothing = Authorization.newBuilder().setName("allow-nothing").setNamespace("default")
                .setAction(Action.ALLOW).build();
        return Stream.of(
                Arguments.of("no policies: allow", C, List.of(), true, "no ALLOW policy"),
                Arguments.of("only DENY, not matching: allow", C,
                        List.of(policy("d", Action.DENY, m().addPrincipals(exact("x")).build())), true, "no ALLOW"),
                Arguments.of("DENY matching: deny", C, List.of(denyClient), false, "deny-client"),
                Arguments.of("DENY before ALLOW", C, List.of(allowClient, denyClient), false, "deny-client"),
                Arguments.of("ALLOW matching", C, List.of(allowClient), true, "allow-client"),
                Arguments.of("ALLOW for another principal: deny", C, List.of(allowOther), false,
                        "no ALLOW policy matched"),
                Arguments.of("ALLOW rules:[{}] allows all", PLAIN, List.of(allowAll), true, "allow-all"),
                Arguments.of("ALLOW without rules allows nothing", C, List.of(allowNothing), false, "no ALLOW"),
                Arguments.of("principal needs identity: plaintext denied", PLAIN, List.of(allowClient), false,
                        "no ALLOW"),
                oneAllow("namespace exact", C, m().addNamespaces(exact("default")), true),
                oneAllow("namespace other", C, m().addNamespaces(exact("prod")), false),
                oneAllow("notNamespaces excludes", C, m().addNotNamespaces(exact("default")), false),
                oneAllow("notPrincipals with plaintext passes", PLAIN,
                        m().addNotPrincipals(exact("cluster.local/ns/default/sa/client")), true),
                oneAllow("principal prefix", C, m().addPrincipals(prefix("cluster.local/ns/default/")), true),
                oneAllow("principal suffix", C, m().addPrincipals(suffix("/sa/client")), true),
                oneAllow("principal suffix miss", C, m().addPrincipals(suffix("/sa/admin")), false),
                oneAllow("presence with identity", C, m().addPrincipals(presence()), true),
                oneAllow("presence without identity", PLAIN, m().addPrincipals(presence()), false),
                oneAllow("principal values OR", C,
                        m().addPrincipals(exact("nope")).addPrincipals(exact("cluster.local/ns/default/sa/client")),
                        true),
                oneAllow("fields AND: principal ok, port wrong", C,
                        m().addPrincipals(presence()).addDestinationPorts(9090), false),
                oneAllow("ipBlocks in", C, m().addSourceIps(cidr("10.1.0.0", 16)), true),
                oneAllow("ipBlocks out", C, m().addSourceIps(cidr("10.2.0.0", 16)), false),
                oneAllow("ipBlocks odd prefix /13", conn(CLIENT, "10.15.0.1", "10.1.2.10", 80),
                        m().addSourceIps(cidr("10.8.0.0", 13)), true),
                Arguments.of("notIpBlocks DENY", C, List.of(policy("deny-outside", Action.DENY,
                        m().addNotSourceIps(cidr("10.1.0.0", 16)).build())), true, "no ALLOW"),
                Arguments.of("notIpBlocks DENY hits", conn(CLIENT, "192.168.0.1", "10.1.2.10", 8080),
                        List.of(policy("deny-outside", Action.DENY, m().addNotSourceIps(cidr("10.1.0.0", 16)).build())),
                        false, "deny-outside"),
                oneAllow("ports", C, m().addDestinationPorts(8080), true),
                oneAllow("notPorts", C, m().addNotDestinationPorts(8080), false),
                oneAllow("when destination.ip", C, m().addDestinationIps(cidr("10.1.2.10", 32)), true),
                Arguments.of("when not destination.ip", C, List.of(policy("ndip", Action.DENY,
                        m().addNotDestinationIps(cidr("10.1.2.10", 32)).build())), true, "no ALLOW"),
                Arguments.of("from AND when (rules AND): both hold", C, List.of(policy("fw", Action.ALLOW,
                        m().addPrincipals(presence()).build(), m().addSourceIps(cidr("10.1.1.10", 32)).build())),
                        true, "fw"),
                Arguments.of("from AND when (rules AND): when fails", C, List.of(policy("fw", Action.ALLOW,
                        m().addPrincipals(presence()).build(), m().addSourceIps(cidr("10.9.9.9", 32)).build())),
                        false, "no ALLOW"),
                oneAllow("IPv6 source vs IPv4 block", conn(CLIENT, "fd00::1", "10.1.2.10", 8080),
                        m().addSourceIps(cidr("10.0.0.0", 8)), false),
                oneAllow("IPv6 ipBlocks in", conn(CLIENT, "fd00:221::10", "fd00:221:1::10", 8080),
                        m().addSourceIps(cidr("fd00:221::", 64)), true),
                oneAllow("IPv6 ipBlocks out", conn(CLIENT, "fd00:221::10", "fd00:221:1::10", 8080),
                        m().addSourceIps(cidr("fd00:221:1::", 64)), false),
                oneAllow("IPv6 ipBlocks odd prefix /59", conn(CLIENT, "fd00:221:0:1f::1", "fd00:221:1::10", 8080),
                        m().addSourceIps(cidr("fd00:221:0:0::", 59)), true),
                Arguments.of("IPv6 DENY /128 hits", conn(CLIENT, "fd00:221::10", "fd00:221:1::10", 8080),
                        List.of(policy("deny-v6", Action.DENY, m().addSourceIps(cidr("fd00:221::10", 128)).build())),
                        false, "deny-v6"),
                Arguments.of("IPv4-mapped source vs IPv4 DENY", new ConnectionAttributes(mapped("10.1.1.10"),
                        C.sourceIdentity(), C.destinationIp(), 8080),
                        List.of(policy("deny-v4", Action.DENY,
                                m().addSourceIps(cidr("10.1.0.0", 16)).build())),
                        false, "deny-v4"),
                Arguments.of("IPv4 source vs IPv4-mapped DENY block", C, List.of(policy("deny-mapped", Action.DENY,
                        m().addSourceIps(Address.newBuilder().setAddress(ByteString.copyFrom(mapped("10.1.0.0")
                                .getAddress())).setLength(112)).build())),
                        false, "deny-mapped"),
                Arguments.of("dry-run DENY not enforced", C, List.of(denyClient.toBuilder().setDryRun(true).build()),
                        true, "no ALLOW"),
                Arguments.of("dry-run ALLOW does not count as ALLOW", C,
                        List.of(allowOther.toBuilder().setDryRun(true).build()), true, "no ALLOW"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void decides(String name, ConnectionAttributes c, List<Authorization> policies, boolean allowed, String reason) {
        Verdict v = Authorizer.authorize(c, policies);
        assertThat(v.allowed()).as(v.reason()).isEqualTo(allowed);
        assertThat(v.reason()).contains(reason);
    }

    @org.junit.jupiter.api.Test
    void dryRunReportsWhatWouldHappen() {
        Verdict v = Authorizer.authorize(C, List.of(policy("deny-client", Action.DENY,
                m().addPrincipals(exact("cluster.local/ns/default/sa/client")).build()).toBuilder().setDryRun(true)
                .build()));
        assertThat(v.allowed()).isTrue();
        assertThat(v.dryRun()).containsExactly("default/deny-client: would deny");
        assertThat(v.policy()).as("a dry-run policy decides nothing").isEmpty();
    }

    @org.junit.jupiter.api.Test
    void namesTheDecidingPolicy() {
        Verdict v = Authorizer.authorize(C, List.of(policy("deny-client", Action.DENY,
                m().addPrincipals(exact("cluster.local/ns/default/sa/client")).build())));
        assertThat(v.allowed()).isFalse();
        assertThat(v.policy()).isEqualTo("default/deny-client");
        assertThat(v.reason()).isEqualTo("denied by DENY policy default/deny-client");
    }

    @org.junit.jupiter.api.Test
    void namespaceComesFromThePrincipal() {
        assertThat(C.sourceNamespace()).contains("default");
        assertThat(C.sourcePrincipal()).contains("cluster.local/ns/default/sa/client");
        assertThat(PLAIN.sourceNamespace()).isEmpty();
        assertThat(conn(OTHER, "10.0.0.1", "10.0.0.2", 1).sourceNamespace()).contains("other");
    }
}
