package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.cli.Wisp;
import dev.wisp.local.Leftovers;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code wisp cluster up} as an operator runs it (a separate process in the foreground): it prints
 * where things are, refuses a second cluster of the same name, and SIGTERM removes everything;
 * after the launcher is killed with SIGKILL, {@code wisp cluster down} removes what it left.
 */
class ClusterCommandE2eTest {
    static final String CLUSTER = "mcli";
    @TempDir
    static Path dir;

    @BeforeAll
    static void prerequisites() throws IOException {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nsenter");
        Files.writeString(dir.resolve("pods.yaml"), """
                pods:
                - {name: web, namespace: shop, serviceAccount: web, node: node1}
                - {name: api, namespace: shop, serviceAccount: api, node: node2}
                """);
    }

    @AfterAll
    static void cleanUp() {
        LocalMesh.down(CLUSTER);
    }

    static Process up(Path log) throws IOException {
        List<String> cmd = new ArrayList<>(MeshSpec.currentJvmWispCommand());
        cmd.addAll(List.of("cluster", "up", "--name", CLUSTER, "--nodes", "2", "--base", "136", "--config-dir", dir
                .resolve("config").toString(), "--pods", dir.resolve("pods.yaml").toString(), "--work-dir",
                dir
                        .resolve("work").toString()));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    static String read(Path f) {
        try {
            return Files.exists(f) ? Files.readString(f) : "";
        } catch (IOException e) {
            return "";
        }
    }

    static String wisp(String... args) {
        StringWriter out = new StringWriter();
        var cl = Wisp.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(out));
        int exit = cl.execute(args);
        return exit + " " + out;
    }

    @Test
    void upRunsInTheForegroundSigtermCleansAndDownCleansAfterSigkill() throws Exception {
        Path log1 = dir.resolve("up1.log");
        Process up = up(log1);
        await().atMost(Duration.ofSeconds(120)).until(() -> read(log1).contains("mesh 'mcli' is up") || !up
                .isAlive());
        String out = read(log1);
        assertThat(out).contains("mesh 'mcli' is up", "config dir  " + dir.resolve("config"), "node1", "10.136.0.11",
                "http://10.136.0.11:15020/metrics", "spiffe://cluster.local/ns/shop/sa/web", "pod api");
        Path generated = dir.resolve("config").resolve(LocalMesh.generatedFileName(CLUSTER));
        assertThat(read(generated)).contains("kind: \"Pod\"", "name: \"api\"", "podIP: \"10.137.1.10\"");
        assertThat(wisp("cluster", "status")).contains("mcli", "running (pid " + up.pid() + ")");
        assertThat(wisp("cluster", "up", "--name", CLUSTER, "--config-dir", dir.resolve("c2").toString())).startsWith(
                "1 ").contains(
                        "error: cluster 'mcli' is already running (process " + up.pid()
                                + "); stop it there with Ctrl-C or run 'wisp cluster down --name mcli'");

        up.destroy();
        assertThat(up.waitFor(60, TimeUnit.SECONDS)).as("wisp cluster up exits on SIGTERM").isTrue();
        assertThat(Leftovers.scan(CLUSTER)).as("left after SIGTERM").isEmpty();
        assertThat(generated).doesNotExist();

        Path log2 = dir.resolve("up2.log");
        Process again = up(log2);
        await().atMost(Duration.ofSeconds(120)).until(() -> read(log2).contains("mesh 'mcli' is up") || !again
                .isAlive());
        assertThat(read(log2)).contains("mesh 'mcli' is up");
        again.destroyForcibly();
        assertThat(again.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(Leftovers.scan(CLUSTER)).as("a crashed launcher leaves its mesh running").anyMatch(l -> l
                .startsWith("process "));
        assertThat(wisp("cluster", "status")).contains("owner gone");
        assertThat(wisp("cluster", "down", "--name", CLUSTER)).isEqualTo("0 cluster 'mcli' removed\n");
        assertThat(Leftovers.scan(CLUSTER)).as("left after wisp cluster down").isEmpty();
        assertThat(generated).doesNotExist();
    }
}
