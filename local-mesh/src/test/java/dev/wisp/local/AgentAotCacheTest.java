package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AgentAotCacheTest {
    @TempDir
    Path dir;

    @Test
    void aCommandThatIsNotJavaWithAClassPathRunsUnchanged() {
        List<String> script = List.of("/opt/wisp/bin/wisp");
        assertThat(AgentAotCache.agentCommand(script)).isSameAs(script);
        List<String> noClassPath = List.of("/usr/bin/java", "-jar", "wisp.jar");
        assertThat(AgentAotCache.agentCommand(noClassPath)).isSameAs(noClassPath);
    }

    @Test
    void aDirectoryOnTheClassPathMeansNoCache() throws Exception {
        Path classes = Files.createDirectories(dir.resolve("classes"));
        Files.writeString(classes.resolve("A.class"), "x");
        List<String> cmd = List.of("/usr/bin/java", "-Xmx256m", "-cp", classes.toString(), "dev.wisp.cli.Wisp");
        assertThat(AgentAotCache.agentCommand(cmd)).isSameAs(cmd);
    }

    @Test
    void theKeyFollowsTheJarsAndTheOptions() throws Exception {
        Path jar = Files.writeString(dir.resolve("a.jar"), "one");
        List<String> cmd = List.of("/usr/bin/java", "-Xmx256m", "-cp", jar.toString(), "dev.wisp.cli.Wisp");
        String key = AgentAotCache.key(cmd);
        assertThat(AgentAotCache.key(cmd)).isEqualTo(key);
        assertThat(AgentAotCache.key(List.of("/usr/bin/java", "-Xmx512m", "-cp", jar.toString(),
                "dev.wisp.cli.Wisp"))).isNotEqualTo(key);
        Files.writeString(jar, "changed");
        assertThat(AgentAotCache.key(cmd)).isNotEqualTo(key);
    }
}
