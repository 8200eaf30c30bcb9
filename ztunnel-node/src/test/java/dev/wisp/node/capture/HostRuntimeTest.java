package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link HostRuntime}, with temporary directories as the image's runtime and jars and as the host's
 * directory: the copy, its launcher, reuse when nothing changed, a new copy when a jar did.
 */
class HostRuntimeTest {
    @TempDir
    Path dir;

    Path javaHome;
    Path lib;
    Path copy;

    void image() throws IOException {
        javaHome = Files.createDirectories(dir.resolve("image/opt/wisp/java"));
        Path java = Files.createDirectories(javaHome.resolve("bin")).resolve("java");
        Files.writeString(java, "#!/bin/sh\necho java \"$@\"\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createDirectories(javaHome.resolve("lib"));
        Files.writeString(javaHome.resolve("lib/modules"), "modules");
        Files.createSymbolicLink(javaHome.resolve("lib/link"), Path.of("modules"));
        Files.writeString(javaHome.resolve("release"), "JAVA_VERSION=\"25\"\n");
        lib = Files.createDirectories(dir.resolve("image/opt/wisp/lib"));
        Files.writeString(lib.resolve("wisp-cli.jar"), "cli v1");
        Files.writeString(lib.resolve("jackson.jar"), "jackson");
        Files.writeString(lib.resolve("README"), "not a jar");
        copy = dir.resolve("host/opt/wisp-cni");
    }

    HostRuntime.Settings settings() {
        return new HostRuntime.Settings(javaHome, lib, copy, Path.of("/opt/wisp-cni"));
    }

    @Test
    void copiesTheRuntimeAndJarsAndWritesALauncherNamingThemAsTheHostDoes() throws Exception {
        image();
        Path launcher = HostRuntime.install(settings());
        Path placed = launcher.getParent();
        assertThat(placed.getParent()).isEqualTo(copy);
        assertThat(placed.getFileName().toString()).matches("wisp-[0-9a-f]{16}");
        assertThat(placed.resolve("java/bin/java")).isExecutable().hasContent("#!/bin/sh\necho java \"$@\"");
        assertThat(Files.readSymbolicLink(placed.resolve("java/lib/link"))).isEqualTo(Path.of("modules"));
        try (Stream<Path> jars = Files.list(placed.resolve("lib"))) {
            assertThat(jars.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("wisp-cli.jar",
                    "jackson.jar");
        }
        assertThat(launcher).isExecutable();
        String host = "/opt/wisp-cni/" + placed.getFileName();
        assertThat(Files.readString(launcher)).startsWith("#!/bin/sh\n").contains("exec '" + host
                + "/java/bin/java' ").contains("-cp '" + host + "/lib/*' dev.wisp.cli.Wisp cni \"$@\"").doesNotContain(
                        dir.toString());
        try (Stream<Path> left = Files.list(copy)) {
            assertThat(left).as("no temporary copy left").containsExactly(placed);
        }
    }

    @Test
    void theSameContentIsReusedAndANewJarMakesANewCopyThatReplacesTheOld() throws Exception {
        image();
        Path first = HostRuntime.install(settings());
        Files.writeString(first.getParent().resolve("marker"), "kept");
        assertThat(HostRuntime.install(settings())).isEqualTo(first);
        assertThat(first.getParent().resolve("marker")).as("not copied again").exists();

        Files.writeString(lib.resolve("wisp-cli.jar"), "cli v2");
        Path second = HostRuntime.install(settings());
        assertThat(second.getParent()).isNotEqualTo(first.getParent());
        assertThat(second.getParent().resolve("lib/wisp-cli.jar")).hasContent("cli v2");
        Files.createDirectories(copy.resolve("unrelated"));
        Path none = dir.resolve("no-launcher-yet");
        HostRuntime.removeOthers(copy, second, none);
        try (Stream<Path> left = Files.list(copy)) {
            assertThat(left).containsExactlyInAnyOrder(second.getParent(), copy.resolve("unrelated"));
        }
    }

    /**
     * The node's launcher still names the copy an installer replaces: that copy stays (a plugin call
     * under way runs on it) until the next installer starts, which removes it.
     */
    @Test
    void theCopyTheNodesLauncherStillRunsIsKeptUntilTheNextInstall() throws Exception {
        image();
        Path first = HostRuntime.install(settings());
        Path node = Files.createDirectories(dir.resolve("cni-bin")).resolve("wisp-cni");
        Files.copy(first, node);
        Files.writeString(lib.resolve("wisp-cli.jar"), "cli v2");
        Path second = HostRuntime.install(settings());
        HostRuntime.removeOthers(copy, second, node);
        try (Stream<Path> left = Files.list(copy)) {
            assertThat(left).as("the copy the node's launcher runs stays").containsExactlyInAnyOrder(first
                    .getParent(), second.getParent());
        }
        Files.copy(second, node, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        HostRuntime.removeOthers(copy, second, node);
        try (Stream<Path> left = Files.list(copy)) {
            assertThat(left).containsExactly(second.getParent());
        }
        Files.writeString(node, "#!/bin/sh\nexec '/elsewhere/wisp-0123456789abcdef/java/bin/java' x\n");
        assertThat(HostRuntime.copyNamedBy(node)).isEqualTo("wisp-0123456789abcdef");
        Files.writeString(node, "#!/bin/sh\nexec /usr/bin/true\n");
        assertThat(HostRuntime.copyNamedBy(node)).isNull();
        // Read back as what it is: the exec line's quoted Java, under a copy's name, or nothing.
        for (String notOurs : List.of("exec '/elsewhere/wisp-0123456789abcdef/java/bin/java", // no closing quote
                "exec '/elsewhere/wisp-0123456789ABCDEF/java/bin/java' x",
                "exec '/elsewhere/wisp-0123/java/bin/java' x",
                "exec '/elsewhere/wisp-0123456789abcdef/bin/java' x", "exec 'java/bin/java' x",
                "exec '/opt/wisp-0123456789abcdef/java/bin/javac' x",
                "exec '\0/wisp-0123456789abcdef/java/bin/java' x")) {
            Files.writeString(node, "#!/bin/sh\n" + notOurs + "\n");
            assertThat(HostRuntime.copyNamedBy(node)).as(notOurs).isNull();
        }
        Files.writeString(node, HostRuntime.launcher(Path.of("/var/lib/wisp cni/wisp-fedcba9876543210")));
        assertThat(HostRuntime.copyNamedBy(node)).as("a host directory with a space").isEqualTo(
                "wisp-fedcba9876543210");
    }

    @Test
    void anIncompleteCopyOfAnEarlierRunIsReplaced() throws Exception {
        image();
        Path launcher = HostRuntime.install(settings());
        Files.delete(launcher.getParent().resolve(".complete"));
        Files.delete(launcher);
        assertThat(HostRuntime.install(settings())).isEqualTo(launcher).isExecutable();
    }

    @Test
    void noJarsNoJavaOrARelativeHostDirectoryAreRefused() throws Exception {
        image();
        assertThatThrownBy(() -> HostRuntime.install(new HostRuntime.Settings(javaHome, dir, copy, Path.of(
                "/opt/wisp-cni")))).hasMessageContaining("no jar in " + dir);
        assertThatThrownBy(() -> HostRuntime.install(new HostRuntime.Settings(dir, lib, copy, Path.of(
                "/opt/wisp-cni")))).hasMessageContaining("no Java runtime at " + dir);
        assertThatThrownBy(() -> new HostRuntime.Settings(javaHome, lib, copy, Path.of("opt/wisp-cni")))
                .hasMessageContaining("not absolute");
        assertThat(copy).doesNotExist();
    }
}
