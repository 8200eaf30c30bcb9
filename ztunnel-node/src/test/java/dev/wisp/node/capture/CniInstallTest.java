package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import java.net.URI;
import java.security.KeyPairGenerator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code wisp cni install}'s file work on a node laid out in temporary directories: a bridge
 * conflist as kind and the reference plugins write it, a single-plugin {@code .conf}, the primary
 * plugin rewriting its file, removal, malformed files, permissions.
 */
class CniInstallTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String BRIDGE = """
            {"cniVersion": "1.0.0", "name": "kindnet", "plugins": [
              {"type": "ptp", "ipMasq": false, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]]}},
              {"type": "portmap", "capabilities": {"portMappings": true}}]}
            """;

    @TempDir
    Path dir;
    CniHost host;
    Path launcher;
    Path token;
    Path ca;

    @BeforeEach
    void node() throws Exception {
        host = CniHost.in(dir);
        launcher = Files.writeString(dir.resolve("launcher"), "#!/bin/sh\nexec wisp cni\n");
        token = Files.writeString(dir.resolve("sa-token"), "eyJhbGciOi.token.v1");
        ca = Files.writeString(dir.resolve("sa-ca.crt"), "-----BEGIN CERTIFICATE-----\n");
    }

    CniInstall installer(CniInstall.Credentials credentials) {
        ObjectNode plugin = JSON.createObjectNode().put("podsDir", "/run/wisp/pods").put("enrollTimeoutSeconds", 10);
        plugin.putObject("kubernetes").put("server", "https://10.96.0.1:443").put("enrollLabel", "wisp.dev/mesh");
        return new CniInstall(new CniInstall.Settings(host.bin(), host.conf(), launcher, plugin, credentials));
    }

    CniInstall installer() {
        return installer(null);
    }

    static List<String> types(Path file) throws Exception {
        return JSON.readTree(file.toFile()).path("plugins").valueStream().map(p -> p.path("type").asText()).toList();
    }

    static String mode(Path file) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(file));
    }

    List<String> confFiles() throws Exception {
        try (Stream<Path> files = Files.list(host.conf())) {
            return files.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void anOwnConflistHoldsWispAloneInItsDirectoryAndLeavesThePrimaryAlone() throws Exception {
        Path primary = Files.writeString(host.conf().resolve("10-kindnet.conflist"), BRIDGE);
        Path multus = dir.resolve("multus/net.d");
        ObjectNode plugin = JSON.createObjectNode().put("podsDir", "/run/wisp/pods");
        CniInstall own = new CniInstall(new CniInstall.Settings(host.bin(), host.conf(), launcher, plugin, null,
                multus));
        assertThat(own.install()).isEqualTo(CniInstall.Outcome.WRITTEN);
        JsonNode list = JSON.readTree(multus.resolve("wisp-cni.conflist").toFile());
        assertThat(list.path("name").asText()).as("what a NetworkAttachmentDefinition names").isEqualTo("wisp-cni");
        assertThat(list.path("cniVersion").asText()).isEqualTo("1.0.0");
        assertThat(list.get("plugins")).hasSize(1);
        assertThat(list.at("/plugins/0")).isEqualTo(JSON.readTree(
                "{\"podsDir\": \"/run/wisp/pods\", \"type\": \"wisp-cni\", \"chained\": false}"));
        assertThat(mode(multus.resolve("wisp-cni.conflist"))).isEqualTo("rw-r--r--");
        assertThat(Files.readString(primary)).as("the runtime's network untouched").isEqualTo(BRIDGE);
        assertThat(host.bin().resolve("wisp-cni")).hasSameBinaryContentAs(launcher);
        assertThat(own.install()).isEqualTo(CniInstall.Outcome.UNCHANGED);
        own.uninstall();
        assertThat(multus.resolve("wisp-cni.conflist")).doesNotExist();
        assertThat(host.bin().resolve("wisp-cni")).doesNotExist();
        assertThat(Files.readString(primary)).isEqualTo(BRIDGE);
        // In the runtime's own directory it would become the node's network (sorting first) or never run.
        assertThatThrownBy(() -> new CniInstall.Settings(host.bin(), host.conf(), launcher, plugin, null, host.conf()
                .resolve("."))).isInstanceOf(IllegalArgumentException.class).hasMessageContaining(
                        "runtime's configuration directory");
    }

    @Test
    void chainsWispLastIntoTheFirstConflistAndCopiesTheLauncher() throws Exception {
        Path primary = Files.writeString(host.conf().resolve("10-kindnet.conflist"), BRIDGE);
        Path later = Files.writeString(host.conf().resolve("99-other.conflist"), BRIDGE);
        Files.setPosixFilePermissions(primary, PosixFilePermissions.fromString("rw-------"));
        assertThat(installer().install()).isEqualTo(CniInstall.Outcome.WRITTEN);
        assertThat(types(primary)).containsExactly("ptp", "portmap", "wisp-cni");
        JsonNode wisp = JSON.readTree(primary.toFile()).at("/plugins/2");
        assertThat(wisp.path("podsDir").asText()).isEqualTo("/run/wisp/pods");
        assertThat(JSON.readTree(primary.toFile()).path("name").asText()).isEqualTo("kindnet");
        assertThat(types(later)).as("only the file the runtime uses").containsExactly("ptp", "portmap");
        assertThat(mode(primary)).as("the primary's permissions kept").isEqualTo("rw-------");
        assertThat(Files.readString(host.bin().resolve("wisp-cni"))).isEqualTo(Files.readString(launcher));
        assertThat(mode(host.bin().resolve("wisp-cni"))).isEqualTo("rwxr-xr-x");
        assertThat(confFiles()).as("no temporary file left").containsExactly("10-kindnet.conflist",
                "99-other.conflist");
    }

    @Test
    void installingAgainChangesNothingAndAChangedEntryReplacesTheOldOne() throws Exception {
        Path primary = Files.writeString(host.conf().resolve("10-kindnet.conflist"), BRIDGE);
        installer().install();
        long written = Files.getLastModifiedTime(primary).toMillis();
        String content = Files.readString(primary);
        assertThat(installer().install()).isEqualTo(CniInstall.Outcome.UNCHANGED);
        assertThat(Files.readString(primary)).isEqualTo(content);
        assertThat(Files.getLastModifiedTime(primary).toMillis()).isEqualTo(written);
        CniInstall withCredentials = installer(new CniInstall.Credentials(token, ca));
        assertThat(withCredentials.install()).isEqualTo(CniInstall.Outcome.WRITTEN);
        assertThat(types(primary)).containsExactly("ptp", "portmap", "wisp-cni");
        assertThat(JSON.readTree(primary.toFile()).at("/plugins/2/kubernetes/tokenFile").asText()).isEqualTo(host.conf()
                .resolve("wisp-cni.d/token").toString());
    }

    @Test
    void aSinglePluginConfBecomesAConflistWithThePluginFirst() throws Exception {
        Files.writeString(host.conf().resolve("10-bridge.conf"), """
                {"cniVersion": "0.4.0", "name": "mynet", "type": "bridge", "bridge": "cni0", "isGateway": true,
                 "ipam": {"type": "host-local", "subnet": "10.22.0.0/16"}}
                """);
        assertThat(installer().install()).isEqualTo(CniInstall.Outcome.WRITTEN);
        assertThat(confFiles()).containsExactly("10-bridge.conflist");
        JsonNode list = JSON.readTree(host.conf().resolve("10-bridge.conflist").toFile());
        assertThat(list.path("cniVersion").asText()).isEqualTo("0.4.0");
        assertThat(list.path("name").asText()).isEqualTo("mynet");
        assertThat(list.at("/plugins/0/type").asText()).isEqualTo("bridge");
        assertThat(list.at("/plugins/0/bridge").asText()).isEqualTo("cni0");
        assertThat(types(host.conf().resolve("10-bridge.conflist"))).containsExactly("bridge", "wisp-cni");
        assertThat(installer().install()).isEqualTo(CniInstall.Outcome.UNCHANGED);
    }

    @Test
    void aConflistRewrittenByThePrimaryGetsWispBackFromTheWatcher() throws Exception {
        Path primary = Files.writeString(host.conf().resolve("10-kindnet.conflist"), BRIDGE);
        Thread watcher = watching(installer());
        try {
            await().atMost(Duration.ofSeconds(20)).until(() -> types(primary).contains("wisp-cni"));
            Files.writeString(primary, BRIDGE); // the primary plugin's daemon restarts and rewrites it
            await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(types(primary)).containsExactly(
                    "ptp", "portmap", "wisp-cni"));
            Files.delete(host.bin().resolve("wisp-cni"));
            Files.writeString(host.conf().resolve("05-new.conflist"), BRIDGE); // a new primary sorts first
            await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(types(host.conf().resolve(
                    "05-new.conflist"))).containsExactly("ptp", "portmap", "wisp-cni"));
            assertThat(host.bin().resolve("wisp-cni")).as("the launcher copied again").exists();
        } finally {
            watcher.interrupt();
            watcher.join(Duration.ofSeconds(10));
        }
        assertThat(watcher.isAlive()).isFalse();
    }

    /** {@code install} watching on a thread of its own, as the install container runs it. */
    static Thread watching(CniInstall install) {
        return Thread.ofPlatform().name("test-cni-watch").start(() -> {
            try {
                install.watch(Duration.ofSeconds(30));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    /**
     * The installer's exit (its container stopped: the watch interrupted, then {@link CniInstall#onExit}):
     * by default the plugin stays chained unless the API says the installer's DaemonSet is gone.
     */
    @Nested
    class WhenTheInstallerStops {
        static final String DAEMONSET = "/apis/apps/v1/namespaces/wisp-system/daemonsets/wisp-node";
        KubeApiStandIn api;
        Path primary;

        @BeforeEach
        void apiServer() throws Exception {
            api = new KubeApiStandIn(Files.createDirectories(dir.resolve("sa")));
            primary = Files.writeString(host.conf().resolve("10-kindnet.conflist"), BRIDGE);
        }

        @AfterEach
        void stopApi() {
            api.close();
        }

        InstallerDaemonSet owner() {
            return new InstallerDaemonSet(URI.create(api.url()), api.tokenFile, api.caFile, "wisp-system",
                    "wisp-node");
        }

        /** The installer runs, is stopped, and exits with {@code removeOnExit} and {@code owner}. */
        boolean runAndStop(boolean removeOnExit, InstallerDaemonSet owner) throws Exception {
            CniInstall install = installer();
            Thread watcher = watching(install);
            await().atMost(Duration.ofSeconds(20)).until(() -> types(primary).contains("wisp-cni"));
            watcher.interrupt();
            watcher.join(Duration.ofSeconds(10));
            assertThat(watcher.isAlive()).isFalse();
            return install.onExit(removeOnExit, owner);
        }

        void assertChained() throws Exception {
            assertThat(types(primary)).containsExactly("ptp", "portmap", "wisp-cni");
            assertThat(host.bin().resolve("wisp-cni")).isExecutable();
        }

        void assertRemoved() throws Exception {
            assertThat(types(primary)).containsExactly("ptp", "portmap");
            assertThat(host.bin().resolve("wisp-cni")).doesNotExist();
        }

        @Test
        void thePluginOutlivesTheInstallerWhileItsDaemonSetStands() throws Exception {
            api.objects.put(DAEMONSET, "{\"kind\": \"DaemonSet\", \"metadata\": {\"name\": \"wisp-node\"}}");
            assertThat(runAndStop(false, owner())).isFalse();
            assertChained();
            assertThat(api.requests).containsExactly("GET " + DAEMONSET + " Bearer " + KubeApiStandIn.TOKEN);

            // No API access at all: it stays.
            assertThat(runAndStop(false, null)).isFalse();
            assertChained();
            // No clear answer (a 500, then the API down): it stays (fail closed).
            api.status.put(DAEMONSET, 500);
            assertThat(runAndStop(false, owner())).isFalse();
            assertChained();
            api.close();
            assertThat(runAndStop(false, owner())).isFalse();
            assertChained();
        }

        @Test
        void theUninstallPathTakesItOut() throws Exception {
            // helm uninstall: the DaemonSet gone (404), then its binding (403) and account (401) within
            // the same second; kubectl delete --cascade=foreground: still there, being deleted.
            for (int status : List.of(404, 403, 401, 200)) {
                if (status == 200) {
                    api.status.remove(DAEMONSET);
                    api.objects.put(DAEMONSET, "{\"kind\": \"DaemonSet\", \"metadata\": {\"name\": \"wisp-node\","
                            + " \"deletionTimestamp\": \"2026-12-07T03:00:00Z\"}}");
                } else {
                    api.status.put(DAEMONSET, status);
                }
                assertThat(runAndStop(false, owner())).as("answered " + status).isTrue();
                assertRemoved();
            }
            // cni.removeOnExit: the old behaviour, taken out without asking.
            api.requests.clear();
            api.objects.put(DAEMONSET, "{\"kind\": \"DaemonSet\", \"metadata\": {\"name\": \"wisp-node\"}}");
            assertThat(runAndStop(true, owner())).isTrue();
            assertRemoved();
            assertThat(api.requests).isEmpty();
        }

        @Test
        void anUntrustedServerIsNoAnswer() throws Exception {
            api.status.put(DAEMONSET, 404);
            Files.writeString(api.caFile, KubeApiStandIn.pem(KubeApiStandIn.selfSigned(KeyPairGenerator.getInstance(
                    "EC").generateKeyPair())));
            assertThat(runAndStop(false, owner())).isFalse();
            assertChained();
            assertThat(api.requests).as("the token never went to a server the CA does not vouch for").isEmpty();
        }
    }

    @Test
    void uninstallTakesWispOutAndRemovesWhatItWrote() throws Exception {
        Path primary = Files.writeString(host.conf().resolve("10-kindnet.conflist"), BRIDGE);
        CniInstall install = installer(new CniInstall.Credentials(token, ca));
        install.install();
        install.uninstall();
        assertThat(types(primary)).containsExactly("ptp", "portmap");
        assertThat(host.bin().resolve("wisp-cni")).doesNotExist();
        assertThat(confFiles()).containsExactly("10-kindnet.conflist");
        install.uninstall(); // twice is fine
        assertThat(types(primary)).containsExactly("ptp", "portmap");
    }

    @Test
    void aMalformedConfigurationIsAClearErrorAndStaysUntouched() throws Exception {
        for (String bad : List.of("{\"cniVersion\": \"1.0.0\", \"plugins\": [", "[1, 2]",
                "{\"cniVersion\": \"1.0.0\", \"name\": \"n\", \"plugins\": []}",
                "{\"cniVersion\": \"1.0.0\", \"name\": \"n\"}",
                "{\"cniVersion\": \"0.2.0\", \"name\": \"n\", \"plugins\": [{\"type\": \"ptp\"}]}")) {
            Path file = Files.writeString(host.conf().resolve("10-broken.conflist"), bad);
            assertThatThrownBy(() -> installer().install()).isInstanceOf(CniInstall.ConfigException.class)
                    .hasMessageStartingWith(file.toString() + ": ");
            assertThat(Files.readString(file)).isEqualTo(bad);
            assertThat(confFiles()).containsExactly("10-broken.conflist");
        }
        assertThatThrownBy(() -> installer().install()).hasMessageContaining("cniVersion '0.2.0'");
    }

    @Test
    void withoutItsLauncherNothingIsChained() throws Exception {
        Path primary = Files.writeString(host.conf().resolve("10-kindnet.conflist"), BRIDGE);
        Files.delete(launcher);
        assertThatThrownBy(() -> installer().install()).isInstanceOf(java.nio.file.NoSuchFileException.class)
                .hasMessageContaining(launcher.toString()).hasMessageContaining("nothing is chained");
        assertThat(Files.readString(primary)).isEqualTo(BRIDGE);
        assertThat(host.bin().resolve("wisp-cni")).doesNotExist();
    }

    @Test
    void noConfigurationYetIsReportedAndWritesNoConflist() throws Exception {
        assertThat(installer().install()).isEqualTo(CniInstall.Outcome.NO_PRIMARY);
        assertThat(confFiles()).isEmpty();
    }

    @Test
    void theCredentialsAreCopiedPrivately() throws Exception {
        Files.writeString(host.conf().resolve("10-kindnet.conflist"), BRIDGE);
        CniInstall install = installer(new CniInstall.Credentials(token, ca));
        install.install();
        Path state = host.conf().resolve("wisp-cni.d");
        assertThat(mode(state)).isEqualTo("rwx------");
        assertThat(mode(state.resolve("token"))).isEqualTo("rw-------");
        assertThat(mode(state.resolve("ca.crt"))).isEqualTo("rw-r--r--");
        assertThat(Files.readString(state.resolve("token"))).isEqualTo("eyJhbGciOi.token.v1");
        Files.writeString(token, "eyJhbGciOi.token.v2"); // the kubelet rotated the projected token
        assertThat(install.install()).isEqualTo(CniInstall.Outcome.UNCHANGED);
        assertThat(Files.readString(state.resolve("token"))).isEqualTo("eyJhbGciOi.token.v2");
        assertThat(Files.readString(host.conf().resolve("10-kindnet.conflist"))).doesNotContain("eyJhbGciOi");
    }
}
