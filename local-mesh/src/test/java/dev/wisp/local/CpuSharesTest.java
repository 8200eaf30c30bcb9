package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.testing.Prerequisites;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link CpuShares}: Kubernetes' requests-to-shares rule, and a process started with {@link
 * CpuShares#joining} runs in its member's group under the cluster's, both with their weights, and the
 * groups go with {@link CpuShares#remove}. The second needs root and cgroup v1's {@code cpu} controller,
 * and fails without them.
 */
class CpuSharesTest {
    @Test
    void requestsBecomeSharesAsKubernetesComputesThem() {
        CpuShares s = CpuShares.ofRequests(200, 100);
        assertThat(s.agent()).as("200m").isEqualTo(204);
        assertThat(s.pod()).as("100m").isEqualTo(102);
        assertThat(s.cluster()).as("the machine's cores, 1024 each").isEqualTo(1024 * Runtime.getRuntime()
                .availableProcessors());
        assertThat(CpuShares.ofRequests(0, 1).pod()).as("the least cgroup v1 takes").isEqualTo(2);
        assertThat(CpuShares.ofRequests(1000, 1000).withCluster(8192).cluster()).isEqualTo(8192);
        assertThatThrownBy(() -> new CpuShares(1, 100, 100)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("2..262144");
        assertThatThrownBy(() -> CpuShares.ofRequests(-1, 100)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aProcessJoinsItsWeightedGroupBeforeItRunsAndTheGroupsGoWithTheCluster() throws Exception {
        Prerequisites.requireRoot();
        Path controller = CpuShares.controller().orElseThrow(() -> new AssertionError(
                "this test needs cgroup v1's cpu controller mounted (e.g. /sys/fs/cgroup/cpu)"));
        String cluster = "cpst" + ProcessHandle.current().pid() % 10_000;
        CpuShares shares = CpuShares.ofRequests(300, 50).withCluster(4096);
        try {
            Process p = new ProcessBuilder(shares.joining(cluster, "node1", true, List.of("cat", "/proc/self/cgroup")))
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("the joined process ended").isTrue();
            assertThat(p.exitValue()).as(out).isZero();
            assertThat(out.lines()).as("the command's own cgroups")
                    .anyMatch(l -> l.matches("\\d+:([a-z,]*,)?cpu(,[a-z,]*)?:"
                            + "/wisp-" + cluster + "/node1"));
            Path group = CpuShares.clusterGroup(controller, cluster);
            assertThat(Files.readString(group.resolve("cpu.shares")).trim()).as("the cluster's group")
                    .isEqualTo("4096");
            assertThat(Files.readString(group.resolve("node1/cpu.shares")).trim()).as("an agent of 300m").isEqualTo(
                    "307");
            shares.joining(cluster, "quiet", false, List.of("true"));
            assertThat(Files.readString(group.resolve("quiet/cpu.shares")).trim()).as("a pod of 50m").isEqualTo("51");
        } finally {
            CpuShares.remove(cluster);
        }
        assertThat(CpuShares.clusterGroup(controller, cluster)).as("removed with the cluster").doesNotExist();
    }
}
