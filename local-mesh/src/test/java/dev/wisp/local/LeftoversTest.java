package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.linux.Mounts;
import dev.wisp.testing.Prerequisites;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The leftovers scan that ends the end-to-end suite finds what a cluster leaves: a deliberately
 * left network namespace, cgroup with a live process, pinned-object directory and WireGuard UAPI
 * socket are each reported
 * under their cluster's name, and nothing is reported once they are gone.
 */
class LeftoversTest {
    static final String CLUSTER = "lftover";

    @BeforeAll
    static void prerequisites() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "sleep");
        // The pin directory below needs bpffs, which a fresh machine may not have mounted yet (the
        // agent's capture mounts it on first use; this test can run before any agent did).
        Path bpffs = Path.of("/sys/fs/bpf");
        if (!Mounts.isMounted(bpffs, "bpf")) {
            Mounts.mount("bpf", bpffs, "bpf");
        }
    }

    @Test
    void aDeliberatelyLeftNamespaceCgroupProcessPinDirectoryAndSocketAreFoundThenGone() throws Exception {
        LocalCluster.down(CLUSTER);
        assertThat(Leftovers.scan(CLUSTER)).isEmpty();
        Sh.run("ip", "netns", "add", "wisp-" + CLUSTER + "-left");
        Path cg = Cgroups.create(Cgroups.wispRoot().resolve(CLUSTER).resolve("pods").resolve("left"));
        Process sleeper = new ProcessBuilder("/bin/sh", "-c", "echo $$ > \"$0\" && exec sleep 600", cg.resolve(
                "cgroup.procs").toString()).start();
        Path pins = Files.createDirectories(Path.of("/sys/fs/bpf/wisp", CLUSTER, "node1"));
        // A WireGuard device of the cluster killed with its namespace leaves its UAPI socket.
        Path socket = Files.createDirectories(LocalCluster.UAPI_SOCKETS).resolve("wisp-" + CLUSTER + "-x.sock");
        Files.writeString(socket, "");
        try {
            List<String> found = Leftovers.scan(CLUSTER);
            assertThat(found).contains("network namespace wisp-" + CLUSTER + "-left",
                    "cgroup " + Cgroups.wispRoot().resolve(CLUSTER),
                    "pinned BPF object " + pins.getParent(), "UAPI socket " + socket);
            // The shell joins the cgroup just after it starts: wait for it there before asserting.
            await().atMost(Duration.ofSeconds(10)).until(() -> Leftovers.scan(CLUSTER).contains("process " + sleeper
                    .pid() + " in " + cg));
            assertThat(Leftovers.scan("other")).as("another cluster's scan").isEmpty();
        } finally {
            LocalCluster.down(CLUSTER);
            sleeper.waitFor();
        }
        assertThat(Leftovers.scan(CLUSTER)).isEmpty();
    }
}
