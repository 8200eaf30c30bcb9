package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class NodeJvmOptionsTest {
    @Test
    void parsesOptionsAndEnvironmentAndSkipsComments() {
        NodeJvmOptions o = NodeJvmOptions.parse("""
                # a comment
                  -XX:+UseSerialGC
                -Xmx128m

                   # an indented comment
                MALLOC_ARENA_MAX=1
                --add-exports=java.base/sun.nio.ch=ALL-UNNAMED
                -Dio.netty.x=Y_Z
                """);
        assertThat(o.options()).containsExactly("-XX:+UseSerialGC", "-Xmx128m",
                "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED", "-Dio.netty.x=Y_Z");
        assertThat(o.environment()).containsExactly(Map.entry("MALLOC_ARENA_MAX", "1"));
    }

    @Test
    void theClassPathCopyIsBinNodeJvmOptions() throws Exception {
        // Surefire runs in the module's directory: the repository's bin/ is beside it.
        Path file = Path.of("..", "bin", "node-jvm.options");
        assertThat(file).exists();
        NodeJvmOptions fromFile = NodeJvmOptions.parse(Files.readString(file));
        NodeJvmOptions loaded = NodeJvmOptions.load();
        assertThat(loaded).isEqualTo(fromFile);
        assertThat(loaded.options()).as("the production agent's collector and the export capture needs").contains(
                MeshSpec.AGENT_EXPORTS).anyMatch(o -> o.matches("-XX:\\+Use[A-Za-z]+GC"));
    }

    @Test
    void productionAgentsDoNotSampleBuffersForLeaks() {
        // Netty's default (simple) level records a stack trace for 1 in 128 buffers on the relay's path;
        // leaks are looked for at the paranoid level instead (NoLeaks in the unit tests, NodeNetnsE2eTest's
        // agents, which are not started with this file).
        assertThat(NodeJvmOptions.load().options()).filteredOn(o -> o.startsWith("-Dio.netty.leakDetection"))
                .containsExactly("-Dio.netty.leakDetection.level=disabled");
    }

    @Test
    void optionsGoAfterTheCommandsOwnSoTheyWinAndOnlyIntoAJavaCommand() {
        NodeJvmOptions o = new NodeJvmOptions(List.of("-Xmx128m", "-Xss256k"), Map.of());
        List<String> java = List.of("/jdk/bin/java", "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp",
                "a.jar:b.jar", "dev.wisp.cli.Wisp");
        assertThat(o.applyTo(java)).containsExactly("/jdk/bin/java", "--enable-native-access=ALL-UNNAMED",
                "-Xmx256m", "-Xmx128m", "-Xss256k", "-cp", "a.jar:b.jar", "dev.wisp.cli.Wisp");
        List<String> launcher = List.of("/repo/bin/wisp");
        assertThat(o.applyTo(launcher)).as("bin/wisp reads the file itself").isEqualTo(launcher);
        List<String> noClassPath = List.of("/jdk/bin/java", "-jar", "wisp.jar");
        assertThat(o.applyTo(noClassPath)).isEqualTo(noClassPath);
    }

    @Test
    void theCallersEnvironmentWins() {
        NodeJvmOptions o = new NodeJvmOptions(List.of(), Map.of("MALLOC_ARENA_MAX", "1", "OTHER", "x"));
        Map<String, String> env = new HashMap<>(Map.of("MALLOC_ARENA_MAX", "4"));
        o.applyTo(env);
        assertThat(env).containsExactlyInAnyOrderEntriesOf(Map.of("MALLOC_ARENA_MAX", "4", "OTHER", "x"));
    }
}
