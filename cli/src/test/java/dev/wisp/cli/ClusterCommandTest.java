package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code wisp cluster}'s help and argument errors (no root needed: refused before anything starts). */
class ClusterCommandTest {
    static WispTest.Run run(String... args) {
        return WispTest.run(args);
    }

    @Test
    void helpNamesTheSubcommandsAndTheConfigDirectory() {
        assertThat(run("cluster", "--help").out()).contains("up", "down", "status");
        assertThat(run("cluster", "up", "--help").out()).contains("--config-dir", "--nodes", "--pods",
                "--[no-]wireguard",
                "wisp-cluster-NAME.yaml", "Ctrl-C");
    }

    @Test
    void aBadPodNameInThePodsFileIsRefusedBeforeAnythingStarts(@TempDir Path dir) throws Exception {
        Path pods = Files.writeString(dir.resolve("pods.yaml"), "pods:\n- {name: A_B, node: node1}\n");
        WispTest.Run r = run("cluster", "up", "--name", "ok", "--config-dir", dir.toString(), "--pods",
                pods.toString());
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("pod name 'A_B': use 1-16 lower-case letters");
    }

    @Test
    void badArgumentsAreOneLineErrors() {
        WispTest.Run badName = run("cluster", "up", "--name", "Bad_Name", "--config-dir", "/tmp/x");
        assertThat(badName.exit()).isEqualTo(2);
        assertThat(badName.err().strip()).isEqualTo(
                "error: cluster name 'Bad_Name': use 1-8 lower-case letters or digits, starting with a letter");
        WispTest.Run badNodes = run("cluster", "up", "--name", "ok", "--nodes", "0", "--config-dir", "/tmp/x");
        assertThat(badNodes.exit()).isEqualTo(2);
        assertThat(badNodes.err()).contains("nodes: 0 is outside 1..50");
        WispTest.Run missing = run("cluster", "up", "--name", "ok");
        assertThat(missing.exit()).isEqualTo(2);
        assertThat(missing.err()).contains("Missing required option: '--config-dir=DIR'");
        WispTest.Run down = run("cluster", "down", "--name", "NO!");
        assertThat(down.exit()).isEqualTo(2);
        assertThat(down.err()).contains("cluster name 'NO!'");
    }
}
