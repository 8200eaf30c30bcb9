package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.testing.ConfigYaml;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code wisp apply/get/delete} against a real control plane on loopback. */
class ControlPlaneCommandsTest {
    static final String POLICY = ConfigYaml.policyHead("front-only", "shop") + """
              action: %s
              rules:
              - from: [{source: {namespaces: [front]}}]
                to: [{operation: {methods: [GET]}}]
            """;
    static final String NODE = ConfigYaml.node("node-a", "192.168.0.1");

    @TempDir
    Path config;
    @TempDir
    Path state;
    @TempDir
    Path work;
    ControlPlane cp;
    String server;

    @BeforeEach
    void start() throws Exception {
        Files.writeString(config.resolve("nodes.yaml"), NODE);
        cp = ControlPlane.start(new ControlPlane.Options(config, state, new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0)));
        server = "http://127.0.0.1:" + cp.adminAddress().getPort();
    }

    @AfterEach
    void stop() {
        cp.close();
    }

    Path file(String name, String text) throws Exception {
        Path p = work.resolve(name);
        Files.writeString(p, text);
        return p;
    }

    @Test
    void applyGetDeleteLikeKubectl() throws Exception {
        Path policy = file("policy.yaml", POLICY.formatted("DENY"));
        WispTest.Run r = WispTest.run("apply", "-f", policy.toString(), "--server", server);
        assertThat(r.exit()).isZero();
        assertThat(r.out()).isEqualTo("authorizationpolicy.security.istio.io/front-only created\n");
        assertThat(cp.model().all(AuthorizationPolicy.class)).hasSize(1);

        assertThat(WispTest.run("apply", "-f", policy.toString(), "--server", server).out())
                .isEqualTo("authorizationpolicy.security.istio.io/front-only unchanged\n");
        Path allow = file("policy.yaml", POLICY.formatted("ALLOW"));
        assertThat(WispTest.run("apply", "-f", allow.toString(), "--server", server).out())
                .isEqualTo("authorizationpolicy.security.istio.io/front-only configured\n");

        WispTest.Run get = WispTest.run("get", "ap", "--server", server);
        assertThat(get.exit()).isZero();
        assertThat(get.out()).isEqualTo("""
                NAMESPACE   NAME         SOURCE                                                    WARNINGS
                shop        front-only   wisp-applied.authorizationpolicy.shop.front-only.yaml:1   1
                """);
        assertThat(get.err()).contains("Warning: AuthorizationPolicy shop/front-only: spec.rules[0]:")
                .contains("node agents drop this ALLOW rule");
        assertThat(WispTest.run("get", "nodes", "node-a", "--server", server).out()).contains("node-a").contains(
                "nodes.yaml:1");

        WispTest.Run del = WispTest.run("delete", "-f", allow.toString(), "--server", server);
        assertThat(del.exit()).isZero();
        assertThat(del.out()).isEqualTo("authorizationpolicy.security.istio.io/front-only deleted\n");
        assertThat(cp.model().all(AuthorizationPolicy.class)).isEmpty();

        WispTest.Run again = WispTest.run("delete", "-f", allow.toString(), "--server", server);
        assertThat(again.exit()).isEqualTo(1);
        assertThat(again.err()).isEqualTo(
                "Error from server (NotFound): authorizationpolicy.security.istio.io \"front-only\" not found\n");
        WispTest.Run missing = WispTest.run("get", "ap", "front-only", "--server", server);
        assertThat(missing.exit()).isEqualTo(1);
        assertThat(missing.err()).contains("NotFound").contains("front-only");
    }

    @Test
    void invalidFileIsRefusedWithFileLineObjectAndField() throws Exception {
        Path bad = file("policies.yaml", POLICY.formatted("DENYY"));
        WispTest.Run r = WispTest.run("apply", "-f", bad.toString(), "--server", server);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("error: policies.yaml:7 AuthorizationPolicy shop/front-only: spec.action: "
                + "'DENYY' is not one of ALLOW, DENY, AUDIT, CUSTOM\n");
        assertThat(cp.model().all(AuthorizationPolicy.class)).isEmpty();
    }

    @Test
    void objectsWrittenByHandAreNotChangedByApply() throws Exception {
        Path node = file("node.yaml", NODE);
        WispTest.Run r = WispTest.run("apply", "-f", node.toString(), "--server", server);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("error: node.yaml:1 Node node-a: declared in nodes.yaml:1 of the config "
                + "directory; edit that file\n");
    }

    @Test
    void caRotateRunsTheStepsInOrderAndRefusesOneOutOfOrder() {
        WispTest.Run status = WispTest.run("ca", "rotate", "status", "--server", server);
        assertThat(status.exit()).isZero();
        String root = cp.rotation().status().orElseThrow().signingRoot().getSerialNumber().toString(16);
        assertThat(status.out()).startsWith("phase stable: root " + root + " signs and is the only trusted root\n")
                .contains("  trusted root " + root + "  CN=").endsWith("next step: add\n");

        WispTest.Run early = WispTest.run("ca", "rotate", "retire", "--server", server);
        assertThat(early.exit()).isEqualTo(1);
        assertThat(early.err()).isEqualTo("error: ca rotate retire: cannot retire: root " + root
                + " signs and is the only trusted root; the next step is 'add'\n");

        WispTest.Run add = WispTest.run("ca", "rotate", "add", "--server", server);
        assertThat(add.exit()).isZero();
        assertThat(add.out()).startsWith("phase added: root ").endsWith("next step: switch\n");
        assertThat(WispTest.run("ca", "rotate", "switch", "--server", server).out()).startsWith("phase switched: ")
                .contains("the old root(s) " + root + " stay trusted until retired").endsWith("next step: retire\n");
        WispTest.Run retire = WispTest.run("ca", "rotate", "retire", "--server", server);
        assertThat(retire.out()).startsWith("phase stable: ").doesNotContain("trusted root " + root + " ")
                .endsWith("next step: add\n");
        assertThat(WispTest.run("ca", "rotate", "undo", "--server", server).err())
                .isEqualTo("error: STEP: 'undo' is not add, switch, retire or status\n");
    }

    @Test
    void unreachableControlPlaneIsOneClearLine() {
        WispTest.Run r = WispTest.run("get", "pods", "--server", "http://127.0.0.1:1");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).startsWith("error: cannot reach the control plane at http://127.0.0.1:1")
                .contains("is 'wisp control-plane' running?");
    }

    @Test
    void controlPlaneRefusesANonLoopbackAdminAddress() {
        WispTest.Run r = WispTest.run("control-plane", "--config-dir", config.toString(), "--state-dir",
                state.toString(), "--admin", "0.0.0.0:15014");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("bind it to 127.0.0.1 or ::1");
    }
}
