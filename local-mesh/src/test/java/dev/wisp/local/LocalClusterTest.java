package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class LocalClusterTest {
    @BeforeAll
    static void prerequisites() {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nc");
    }

    @Test
    void podsOnDifferentNodesTalkAndTeardownLeavesNothing() throws Exception {
        ClusterSpec spec = ClusterSpec.builder("lctest").nodes(2).pod("client", "default", "client", 0).pod("server",
                "default", "server", 1).pod("other", "other", "other", 0).build();
        Process server;
        try (LocalCluster cluster = LocalCluster.up(spec)) {
            LocalCluster.Pod s = cluster.pod("server");
            LocalCluster.Pod c = cluster.pod("client");
            assertThat(s.ip()).isEqualTo("10.201.1.10");
            assertThat(c.ip()).isEqualTo("10.201.0.10");
            assertThat(cluster.pod("other").ip()).isEqualTo("10.201.0.11");

            server = cluster.startInPod(s, List.of("nc", "-l", "-N", "8080"));
            // The server runs inside the pod's cgroup.
            await().atMost(Duration.ofSeconds(5)).until(() -> cgroupOf(server.pid()).endsWith(
                    "/wisp/lctest/pods/server"));
            String reply = await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> {
                ProcessBuilder pb = cluster.inPod(c, List.of("/bin/sh", "-c", "echo hello-from-client | nc -N -w 2 "
                        + s.ip() + " 8080"));
                Process p = pb.start();
                p.waitFor();
                return p.exitValue();
            }, code -> code == 0) == 0
                    ? new String(server.getInputStream().readAllBytes(), StandardCharsets.UTF_8)
                    : "";
            assertThat(reply).isEqualTo("hello-from-client\n");

            assertThatThrownBy(() -> cluster.pod("nope")).hasMessageContaining("no pod 'nope'");
            assertThat(LocalCluster.netnsNames()).contains("wisp-lctest-ul", "wisp-lctest-node1",
                    "wisp-lctest-node2", "wisp-lctest-p-client", "wisp-lctest-p-server", "wisp-lctest-p-other");
        }
        assertThat(server.isAlive()).isFalse();
        assertThat(Leftovers.scan("lctest")).isEmpty();
    }

    @Test
    void downRemovesAClusterWhoseBuilderDiedWithoutClosing() throws Exception {
        ClusterSpec spec = ClusterSpec.builder("lcorphan").nodes(1).pod("a", "default", "a", 0).build();
        LocalCluster cluster = LocalCluster.up(spec);
        Process sleeper = cluster.startInPod(cluster.pod("a"), List.of("sleep", "600"));
        await().atMost(Duration.ofSeconds(5)).until(() -> cgroupOf(sleeper.pid()).endsWith("/wisp/lcorphan/pods/a"));
        // The builder "crashes": nothing calls close(); `down` by name must still clean everything.
        LocalCluster.down("lcorphan");
        await().atMost(Duration.ofSeconds(5)).until(() -> !sleeper.isAlive());
        assertThat(Leftovers.scan("lcorphan")).isEmpty();
    }

    /**
     * A namespace that another teardown removed between the listing and the step (a demo stopped by
     * SIGTERM while its waypoint pod was being removed) is not a failure; one that still exists is.
     */
    @Test
    void aTeardownStepFailingOnANamespaceAnotherTeardownRemovedIsNoFailure() {
        String ns = "wisp-lcgone-" + ProcessHandle.current().pid();
        RuntimeException refused = new ClusterException(
                "'ip netns pids " + ns + "' failed: Cannot open network namespace");
        LocalCluster.unlessGone(ns, () -> {
            throw refused;
        });
        Sh.run("ip", "netns", "add", ns);
        try {
            assertThatThrownBy(() -> LocalCluster.unlessGone(ns, () -> {
                throw refused;
            })).isSameAs(refused);
        } finally {
            Sh.run("ip", "netns", "del", ns);
        }
    }

    @Test
    void specRefusesBadInputWithTheFieldNamed() {
        assertThatThrownBy(() -> ClusterSpec.builder("Bad_Name").build()).hasMessageContaining(
                "cluster name 'Bad_Name'");
        assertThatThrownBy(() -> ClusterSpec.builder("ok").nodes(0).build()).hasMessageContaining(
                "nodes: 0 is outside 1..50");
        assertThatThrownBy(() -> ClusterSpec.builder("ok").pod("a", "ns", "sa", 5).build()).hasMessageContaining(
                "pod 'a': node 5 does not exist");
        assertThatThrownBy(() -> ClusterSpec.builder("ok").pod("a", "ns", "sa", 0).pod("a", "ns", "sa", 1).build())
                .hasMessageContaining("pod 'a' is declared twice");
    }

    private static String cgroupOf(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/cgroup"))) {
            if (line.startsWith("0::")) {
                return line.substring(3);
            }
        }
        return "";
    }
}
