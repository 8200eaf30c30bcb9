package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code wisp cni install}: its options become the chained entry; --once, --uninstall and refusals. */
class CniInstallCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void onceChainsTheEntryItsOptionsDescribeAndUninstallTakesItOut(@TempDir Path dir) throws Exception {
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Path conf = Files.createDirectories(dir.resolve("net.d"));
        Path launcher = Files.writeString(dir.resolve("launcher"), "#!/bin/sh\n");
        Path conflist = Files.writeString(conf.resolve("10-ptp.conflist"), """
                {"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "ptp"}]}
                """);
        String[] common = {"cni", "install", "--cni-bin-dir=" + bin, "--cni-conf-dir=" + conf,
                "--launcher=" + launcher};
        WispTest.Run once = WispTest.run(concat(common, "--once", "--pods-dir=/run/p", "--netns-dir=/var/run/netns",
                "--exclude-namespace=kube-system,infra", "--enroll-timeout=20"));
        assertThat(once.exit()).as(once.err()).isZero();
        assertThat(once.out()).contains("wisp-cni chained in " + conf);
        JsonNode entry = JSON.readTree(conflist.toFile()).at("/plugins/1");
        assertThat(entry).isEqualTo(JSON.readTree("""
                {"podsDir": "/run/p", "cgroupRoot": "/sys/fs/cgroup", "netnsDirs": ["/var/run/netns"],
                 "excludeNamespaces": ["kube-system", "infra"], "enrollTimeoutSeconds": 20, "type": "wisp-cni"}
                """));
        assertThat(bin.resolve("wisp-cni")).isExecutable();

        WispTest.Run uninstall = WispTest.run(concat(common, "--uninstall"));
        assertThat(uninstall.exit()).as(uninstall.err()).isZero();
        assertThat(JSON.readTree(conflist.toFile()).path("plugins")).hasSize(1);
        assertThat(bin.resolve("wisp-cni")).doesNotExist();
    }

    @Test
    void aMalformedConfigurationOrABadTimeoutIsOneClearError(@TempDir Path dir) throws Exception {
        Path conf = Files.createDirectories(dir.resolve("net.d"));
        Files.writeString(conf.resolve("10-ptp.conflist"), "{\"cniVersion\": ");
        Path launcher = Files.writeString(dir.resolve("launcher"), "#!/bin/sh\n");
        String[] common = {"cni", "install", "--once", "--cni-bin-dir=" + dir, "--cni-conf-dir=" + conf,
                "--launcher=" + launcher};
        WispTest.Run bad = WispTest.run(common);
        assertThat(bad.exit()).isEqualTo(1);
        assertThat(bad.err()).contains("cannot chain wisp-cni: " + conf.resolve("10-ptp.conflist") + ": not JSON");
        WispTest.Run timeout = WispTest.run(concat(common, "--enroll-timeout=0"));
        assertThat(timeout.exit()).isEqualTo(1);
        assertThat(timeout.err()).contains("--enroll-timeout must be 1..120 seconds");
    }

    @Test
    void removeOnUninstallNamesOneDaemonSetAndExcludesRemoveOnExit(@TempDir Path dir) throws Exception {
        String[] common = {"cni", "install", "--cni-bin-dir=" + dir, "--cni-conf-dir=" + dir, "--launcher=" + dir
                .resolve("launcher")};
        WispTest.Run both = WispTest.run(concat(common, "--remove-on-exit", "--remove-on-uninstall=wisp/wisp-node"));
        assertThat(both.exit()).isEqualTo(1);
        assertThat(both.err()).contains("--remove-on-exit and --remove-on-uninstall exclude each other");
        for (String bad : new String[]{"wisp-node", "wisp/", "/wisp-node", "a/b/c"}) {
            WispTest.Run run = WispTest.run(concat(common, "--remove-on-uninstall=" + bad));
            assertThat(run.exit()).as(bad).isEqualTo(1);
            assertThat(run.err()).contains("--remove-on-uninstall must be NAMESPACE/DAEMONSET, not '" + bad + "'");
        }
        WispTest.Run outside = WispTest.run(concat(common, "--remove-on-uninstall=wisp/wisp-node"));
        assertThat(outside.exit()).isEqualTo(1);
        assertThat(outside.err()).contains("--remove-on-uninstall: KUBERNETES_SERVICE_HOST/PORT are not set");
        try (var files = Files.list(dir)) {
            assertThat(files).as("nothing written").isEmpty();
        }
    }

    private static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
