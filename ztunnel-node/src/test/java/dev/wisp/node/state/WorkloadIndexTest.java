package dev.wisp.node.state;

import static dev.wisp.node.Fixtures.ip;
import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.principalPolicy;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.service;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Scope;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.Fixtures;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WorkloadIndexTest {
    final WorkloadIndex index = WorkloadIndex.create();

    @Test
    void looksUpWorkloadsAndServicesByAddress() throws Exception {
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("a", "client", "n1", "10.0.1.1")),
                res(workload("b", "server", "n2", "10.0.2.1").putServices("default/echo.default.svc",
                        Fixtures.ports(80, 8080)))),
                List.of());
        index.apply(StateUpdates.SERVICE, List.of(service("echo.default.svc", "10.96.0.1", 80, 8080)), List.of());
        assertThat(index.workloadByAddress(InetAddress.ofLiteral("10.0.2.1"))).map(Workload::getUid).contains("b");
        assertThat(index.workloadByAddress(InetAddress.ofLiteral("10.0.9.9"))).isEmpty();
        assertThat(index.serviceByAddress(InetAddress.ofLiteral("10.96.0.1")).orElseThrow().getHostname())
                .isEqualTo("echo.default.svc");
        assertThat(index.snapshot().endpoints("default/echo.default.svc")).extracting(Workload::getUid)
                .containsExactly("b");
        assertThat(index.versions(StateUpdates.WORKLOAD)).containsOnlyKeys("a", "b");
    }

    @Test
    void removalDropsTheAddress() throws Exception {
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("a", "client", "n1", "10.0.1.1"))), List.of());
        index.apply(StateUpdates.WORKLOAD, List.of(), List.of("a"));
        assertThat(index.workloadByAddress(InetAddress.ofLiteral("10.0.1.1"))).isEmpty();
    }

    @Test
    void aRefusedUpdateChangesNothing() throws Exception {
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("a", "client", "n1", "10.0.1.1"))), List.of());
        Snapshot before = index.snapshot();
        Resource bad = res(workload("c", "x", "n1", "10.0.1.3").addAddresses(ByteString.copyFrom(new byte[]{1, 2,
                3})));
        assertThatThrownBy(() -> index.apply(StateUpdates.WORKLOAD,
                List.of(res(workload("b", "server", "n2", "10.0.2.1")), bad), List.of("a")))
                .isInstanceOf(InvalidResourceException.class).hasMessageContaining("'c'")
                .hasMessageContaining("field addresses").hasMessageContaining("3 bytes");
        assertThat(index.snapshot()).isSameAs(before);
        assertThat(index.workloadByAddress(InetAddress.ofLiteral("10.0.1.1"))).isPresent();
        assertThat(index.workloadByAddress(InetAddress.ofLiteral("10.0.2.1"))).isEmpty();
    }

    @Test
    void validationNamesResourceAndField() {
        assertThatThrownBy(() -> index.apply(StateUpdates.WORKLOAD,
                List.of(res(workload("a", "", "n1", "10.0.1.1"))), List.of()))
                .hasMessageContaining("'a'").hasMessageContaining("service_account");
        assertThatThrownBy(() -> index.apply(StateUpdates.WORKLOAD,
                List.of(Resource.newBuilder().setName("x").setWorkload(workload("y", "s", "n", "10.0.0.1")).build()),
                List.of())).hasMessageContaining("field uid");
        assertThatThrownBy(() -> index.apply(StateUpdates.NODE, List.of(res(workload("a", "s", "n", "10.0.0.1"))),
                List.of())).hasMessageContaining("field kind: expected node for type " + StateUpdates.NODE
                        + ", found workload");
        assertThatThrownBy(() -> index.apply(StateUpdates.SERVICE, List.of(service("s.default", "10.0.0.1", 0, 0)),
                List.of())).hasMessageContaining("service_port 0");
        assertThatThrownBy(() -> index.apply("type.example/Other", List.of(), List.of()))
                .hasMessageContaining("unknown type URL");
        Resource node = Fixtures.node("n1", "10.0.0.1", 15008);
        Resource futureProtocol = node.toBuilder().setNode(node.getNode().toBuilder().setHboneProtocolValue(9)).build();
        assertThatThrownBy(() -> index.apply(StateUpdates.NODE, List.of(futureProtocol), List.of()))
                .hasMessageContaining("'n1'").hasMessageContaining("hbone_protocol").hasMessageContaining("9 is not");
        Resource badPolicy = principalPolicy("p", Action.ALLOW, "x").toBuilder()
                .setAuthorization(principalPolicy("p", Action.ALLOW, "x").getAuthorization().toBuilder()
                        .setGroups(0, principalPolicy("p", Action.ALLOW, "x").getAuthorization().getGroups(0)
                                .toBuilder().setRules(0, dev.wisp.api.workload.v1.Rules.newBuilder().addMatches(
                                        dev.wisp.api.workload.v1.Match.newBuilder().addDestinationPorts(70000)))))
                .build();
        assertThatThrownBy(() -> index.apply(StateUpdates.AUTHORIZATION, List.of(badPolicy), List.of()))
                .hasMessageContaining("'default/p'").hasMessageContaining("groups[0].rules[0].matches[0]"
                        + ".destination_ports");
    }

    @Test
    void twoWorkloadsClaimingOneAddressAreRefused() throws Exception {
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("a", "client", "n1", "10.0.1.1"))), List.of());
        assertThatThrownBy(() -> index.apply(StateUpdates.WORKLOAD,
                List.of(res(workload("b", "client", "n1", "10.0.1.1"))), List.of()))
                .hasMessageContaining("already workload 'a'");
        // Replacing the owner in one update is fine.
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("b", "client", "n1", "10.0.1.1"))), List.of("a"));
        assertThat(index.workloadByAddress(InetAddress.ofLiteral("10.0.1.1")).orElseThrow().getUid()).isEqualTo("b");
    }

    @Test
    void policiesInScope() throws Exception {
        Authorization global = Authorization.newBuilder().setName("g").setNamespace("istio-system")
                .setScope(Scope.GLOBAL).build();
        Authorization ns = Authorization.newBuilder().setName("n").setNamespace("default").setScope(Scope.NAMESPACE)
                .build();
        Authorization otherNs = Authorization.newBuilder().setName("o").setNamespace("prod")
                .setScope(Scope.NAMESPACE).build();
        Authorization selected = Authorization.newBuilder().setName("s").setNamespace("default")
                .setScope(Scope.WORKLOAD_SELECTOR).build();
        Authorization notSelected = Authorization.newBuilder().setName("t").setNamespace("default")
                .setScope(Scope.WORKLOAD_SELECTOR).build();
        index.apply(StateUpdates.AUTHORIZATION, List.of(auth(global), auth(ns), auth(otherNs), auth(selected),
                auth(notSelected)), List.of());
        Workload w = workload("a", "client", "n1", "10.0.1.1").addAuthorizationPolicies("default/s").build();
        assertThat(index.policiesFor(w)).extracting(Authorization::getName).containsExactlyInAnyOrder("g", "n", "s");
    }

    static Resource auth(Authorization a) {
        return Resource.newBuilder().setName(a.getNamespace() + "/" + a.getName()).setAuthorization(a).build();
    }

    @Test
    void stateFileLoadsYamlWithTextAddresses(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("state.yaml");
        Files.writeString(f,
                """
                        resources:
                          - name: pod-a
                            workload: {uid: pod-a, namespace: default, serviceAccount: client, trustDomain: cluster.local,
                                       node: node1, addresses: [10.0.1.10], tunnelProtocol: TUNNEL_HBONE}
                          - name: node1
                            node: {name: node1, addresses: ["10.0.0.1"], hbone_port: 15008}
                          - name: default/deny
                            authorization:
                              name: deny
                              namespace: default
                              scope: NAMESPACE
                              action: DENY
                              groups: [{rules: [{matches: [{sourceIps: ["10.0.0.0/8"], principals: [{prefix: "cluster.local/"}]}]}]}]
                        """);
        StateFile.load(f, index);
        assertThat(index.workloadByAddress(InetAddress.ofLiteral("10.0.1.10"))).isPresent();
        assertThat(index.node("node1").orElseThrow().getAddresses(0)).isEqualTo(ip("10.0.0.1"));
        var m = index.snapshot().authorization("default/deny").orElseThrow().getGroups(0).getRules(0).getMatches(0);
        assertThat(m.getSourceIps(0).getLength()).isEqualTo(8);
        assertThat(m.getPrincipals(0).getPrefix()).isEqualTo("cluster.local/");
        // Reloading a file without the policy removes it.
        Files.writeString(f, """
                resources:
                  - name: node1
                    node: {name: node1, addresses: ["10.0.0.1"]}
                """);
        StateFile.load(f, index);
        assertThat(index.snapshot().authorization("default/deny")).isEmpty();
        assertThat(index.workloadByAddress(InetAddress.ofLiteral("10.0.1.10"))).isEmpty();
    }

    @Test
    void stateFileErrorsNameTheEntry(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("bad.yaml");
        Files.writeString(f, "resources:\n  - name: x\n    node: {name: x, addresses: [not-an-ip]}\n");
        assertThatThrownBy(() -> StateFile.load(f, index)).hasMessageContaining("not-an-ip");
        Files.writeString(f, "resources:\n  - name: x\n    nodez: {}\n");
        assertThatThrownBy(() -> StateFile.load(f, index)).hasMessageContaining("resources[0]");
    }
}
