package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.testing.ConfigYaml;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The container image, built with no container daemon by {@code scripts/image.sh} and then used as a
 * runtime would use it. The suite builds the {@code --quick} variant (the host's programs and
 * libraries as its base; the release image's debootstrap base takes minutes): {@code
 * -Dwisp.image.variant=full} builds and checks the release image the same way. Checked: every blob
 * of the OCI layout against its digest and size, the config's layer {@code diff_ids} against the
 * uncompressed layers, labels, user and entrypoint; skopeo (a reader nobody here wrote) inspects the
 * {@code oci-archive} and reports the same manifest digest; umoci unpacks it into a runtime bundle;
 * inside that root file system (chroot, own mount and PID namespaces, /proc mounted, the image's
 * environment only, user 1337) {@code wisp --version} runs on the image's own Java, and the control
 * plane starts from a config directory and answers its readiness endpoint.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ContainerImageE2eTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path ROOT = Path.of(System.getenv().getOrDefault("WISP_SOURCE_ROOT", "..")).toAbsolutePath()
            .normalize();

    @TempDir
    static Path dir;
    static Path out;
    static Path archive;
    static String manifestDigest;
    static JsonNode config;
    static Path rootfs;
    static Process controlPlane;

    @BeforeAll
    static void build() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("tar", "gzip", "jq", "sha256sum", "skopeo", "umoci", "unshare", "chroot");
        out = dir.resolve("image");
        List<String> cmd = new ArrayList<>(List.of(ROOT.resolve("scripts/image.sh").toString(), "--out", out
                .toString(), "--cache", ROOT.resolve("target/image-cache").toString()));
        if (!"full".equals(System.getProperty("wisp.image.variant"))) {
            cmd.add("--quick");
        }
        Run build = run(cmd, Duration.ofMinutes(15));
        assertThat(build.exit()).as(build.toString()).isZero();
        manifestDigest = line(build.output(), "manifest ");
        archive = Path.of(line(build.output(), "archive ").split(" ")[0]);
    }

    /**
     * Stops the image's control plane and everything under it. Killing {@code unshare} alone left the
     * JVM running: {@code chroot --userspec} changes its credentials, which clears the parent-death
     * signal {@code --kill-child} had set, so it outlived the test (found after CI runs 7 and 8).
     */
    @AfterAll
    static void stop() throws Exception {
        if (controlPlane != null) {
            List<ProcessHandle> tree = controlPlane.descendants().toList();
            controlPlane.destroyForcibly().waitFor(20, TimeUnit.SECONDS);
            for (ProcessHandle h : tree) {
                h.destroyForcibly();
                h.onExit().get(20, TimeUnit.SECONDS);
            }
            assertThat(tree).as("the image's processes, after the class").noneMatch(ProcessHandle::isAlive);
        }
    }

    @Test
    @Order(1)
    void everyBlobMatchesItsDigestAndTheConfigNamesTheUncompressedLayers() throws Exception {
        Path layout = out.resolve("oci");
        assertThat(JSON.readTree(layout.resolve("oci-layout").toFile()).path("imageLayoutVersion").asText())
                .isEqualTo("1.0.0");
        JsonNode index = JSON.readTree(layout.resolve("index.json").toFile());
        assertThat(index.path("manifests")).hasSize(1);
        JsonNode m = index.at("/manifests/0");
        assertThat(m.at("/annotations/org.opencontainers.image.ref.name").asText()).isEqualTo("0.1.0");
        assertThat(m.path("digest").asText()).isEqualTo(manifestDigest);
        JsonNode manifest = JSON.readTree(blob(layout, m));
        assertThat(manifest.path("mediaType").asText()).isEqualTo("application/vnd.oci.image.manifest.v1+json");
        config = JSON.readTree(blob(layout, manifest.get("config")));
        List<String> diffIds = new ArrayList<>();
        for (JsonNode layer : manifest.get("layers")) {
            assertThat(layer.path("mediaType").asText()).isEqualTo("application/vnd.oci.image.layer.v1.tar+gzip");
            blob(layout, layer);
            try (InputStream in = new GZIPInputStream(Files.newInputStream(blobPath(layout, layer)))) {
                diffIds.add("sha256:" + sha256(in));
            }
        }
        assertThat(diffIds).hasSize(3);
        assertThat(config.at("/rootfs/diff_ids").valueStream().map(JsonNode::asText).toList()).isEqualTo(diffIds);
        assertThat(config.at("/config/User").asText()).isEqualTo("1337:1337");
        assertThat(config.at("/config/Entrypoint/0").asText()).isEqualTo("/opt/wisp/bin/wisp");
        assertThat(config.at("/config/Labels/org.opencontainers.image.version").asText()).isEqualTo("0.1.0");
        assertThat(config.at("/config/Labels/org.opencontainers.image.revision").asText()).matches("[0-9a-f]{40}");
        assertThat(config.at("/config/Labels/dev.wisp.image.java-modules").asText()).contains("java.base",
                "jdk.unsupported");
    }

    @Test
    @Order(2)
    void skopeoReadsTheArchiveWithTheSameDigestAndUmociUnpacksIt() throws Exception {
        Run inspect = run(List.of("skopeo", "inspect", "oci-archive:" + archive + ":0.1.0"), Duration.ofMinutes(2));
        assertThat(inspect.exit()).as(inspect.toString()).isZero();
        JsonNode seen = JSON.readTree(inspect.output());
        assertThat(seen.path("Digest").asText()).isEqualTo(manifestDigest);
        assertThat(seen.at("/Labels/org.opencontainers.image.title").asText()).isEqualTo("wisp");
        assertThat(seen.path("Layers")).hasSize(3);
        Path bundle = dir.resolve("bundle");
        Run unpack = run(List.of("umoci", "unpack", "--image", out.resolve("oci") + ":0.1.0", bundle.toString()),
                Duration.ofMinutes(5));
        assertThat(unpack.exit()).as(unpack.toString()).isZero();
        rootfs = bundle.resolve("rootfs");
        JsonNode runtime = JSON.readTree(bundle.resolve("config.json").toFile());
        assertThat(runtime.at("/process/user/uid").asInt()).isEqualTo(1337);
        assertThat(runtime.at("/process/args/0").asText()).isEqualTo("/opt/wisp/bin/wisp");
        assertThat(rootfs.resolve("opt/wisp/java/bin/java")).isExecutable();
        assertThat(rootfs.resolve("opt/wisp/lib/wisp-cli.jar")).isRegularFile();
    }

    @Test
    @Order(3)
    void wispRunsInsideOnTheImagesOwnJava() throws Exception {
        Run version = run(inside("1337:1337", "/opt/wisp/bin/wisp", "--version"), Duration.ofMinutes(2));
        assertThat(version.exit()).as(version.toString()).isZero();
        assertThat(version.output()).contains("wisp 0.1.0").contains("Java 25");
        Run whoami = run(inside("1337:1337", "/usr/bin/id", "-u"), Duration.ofSeconds(30));
        assertThat(whoami.output().strip()).isEqualTo("1337");
    }

    @Test
    @Order(4)
    void theControlPlaneStartsFromAConfigDirectoryAndAnswersItsReadinessEndpoint() throws Exception {
        Path mesh = Files.createDirectories(rootfs.resolve("etc/wisp/mesh"));
        Files.writeString(mesh.resolve("mesh.yaml"), ConfigYaml.meshConfig("cluster.local"));
        Files.createDirectories(rootfs.resolve("var/lib/wisp/control-plane"));
        run(List.of("chown", "-R", "1337:1337", rootfs.resolve("var/lib/wisp").toString()), Duration.ofSeconds(10));
        int xds = freePort();
        int metrics = freePort();
        // Every port its own: it shares this host's network namespace, where 15014 may be another mesh's.
        int admin = freePort();
        List<String> cmd = inside("1337:1337", "/opt/wisp/bin/wisp", "control-plane", "--config-dir", "/etc/wisp/mesh",
                "--state-dir", "/var/lib/wisp/control-plane", "--listen", "127.0.0.1:" + xds, "--metrics", "127.0.0.1:"
                        + metrics,
                "--admin", "127.0.0.1:" + admin);
        Path log = dir.resolve("control-plane.log");
        controlPlane = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        HttpClient http = HttpClient.newHttpClient();
        URI ready = URI.create("http://127.0.0.1:" + metrics + "/healthz/ready");
        await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(500)).until(() -> {
            assertThat(controlPlane.isAlive()).as(PodApps.read(log)).isTrue();
            try {
                return http.send(HttpRequest.newBuilder(ready).build(), HttpResponse.BodyHandlers.ofString())
                        .statusCode() == 200;
            } catch (IOException e) {
                return false;
            }
        });
        // What answered is the JVM of the image, running as the image's user.
        ProcessHandle java = controlPlane.toHandle().descendants().filter(p -> p.info().command().orElse("")
                .endsWith("/opt/wisp/java/bin/java")).findFirst().orElseThrow(() -> new AssertionError(
                        "no /opt/wisp/java/bin/java below the control plane's process"));
        assertThat(Files.readString(Path.of("/proc/" + java.pid() + "/status"))).containsPattern(
                "(?m)^Uid:\\s+1337\\s");
    }

    /**
     * The chart's {@code install-cni} container run from the image against a node laid out as a
     * kubelet's host: the host's CNI directories mounted at their own paths and {@code cni.runtimeDir}
     * under {@code /host}, as the rendered DaemonSet mounts them. It chains the plugin, copies the
     * image's Java runtime and jars to the host, and writes the launcher into the CNI bin directory;
     * then the container runtime's call, on the host, outside the image, with only the CNI
     * environment: {@code CNI_COMMAND=VERSION} answers on the copied runtime.
     */
    @Test
    @Order(5)
    void installCniPutsThePluginAndTheJavaItRunsOnOnTheHost() throws Exception {
        Path node = dir.resolve("node");
        Path bin = Files.createDirectories(node.resolve("opt/cni/bin"));
        Path conf = Files.createDirectories(node.resolve("etc/cni/net.d"));
        Path runtime = Files.createDirectories(node.resolve("opt/wisp-cni"));
        Files.writeString(conf.resolve("10-ptp.conflist"), """
                {"cniVersion": "1.0.0", "name": "k8s-pod-network", "plugins": [
                  {"type": "ptp", "ipam": {"type": "host-local", "subnet": "10.42.0.0/16"}}]}
                """);
        Map<Path, String> mounts = Map.of(bin, "/opt/cni/bin", conf, "/etc/cni/net.d", runtime, "/host/opt/wisp-cni");
        Run install = run(inside("0:0", mounts, "/opt/wisp/bin/wisp", "cni", "install", "--once",
                "--cni-bin-dir=/opt/cni/bin", "--cni-conf-dir=/etc/cni/net.d", "--copy-runtime-to=/host/opt/wisp-cni",
                "--host-runtime-dir=" + runtime, "--pods-dir=/run/wisp/pods"), Duration.ofMinutes(3));
        assertThat(install.exit()).as(install.toString()).isZero();
        assertThat(install.output()).contains("wisp-cni chained in /etc/cni/net.d");
        JsonNode chained = JSON.readTree(conf.resolve("10-ptp.conflist").toFile());
        assertThat(chained.at("/plugins/1/type").asText()).isEqualTo("wisp-cni");

        List<Path> copies;
        try (var list = Files.list(runtime)) {
            copies = list.toList();
        }
        assertThat(copies).hasSize(1);
        Path copy = copies.getFirst();
        assertThat(copy.getFileName().toString()).matches("wisp-[0-9a-f]{16}");
        assertThat(copy.resolve("java/bin/java")).isExecutable();
        assertThat(copy.resolve("lib/wisp-cli.jar")).hasSameBinaryContentAs(rootfs.resolve(
                "opt/wisp/lib/wisp-cli.jar"));
        Path launcher = bin.resolve("wisp-cni");
        assertThat(launcher).isExecutable();
        assertThat(Files.readString(launcher)).contains("exec '" + copy.resolve("java/bin/java") + "' ");

        // As the container runtime runs a plugin: on the host, its environment the CNI variables only.
        Path request = Files.writeString(dir.resolve("version.json"), "{\"cniVersion\": \"1.0.0\"}");
        Run version = run(List.of("sh", "-c", "exec env -i CNI_COMMAND=VERSION PATH=/usr/sbin:/usr/bin:/sbin:/bin "
                + "\"$0\" < \"$1\"", launcher.toString(), request.toString()), Duration.ofMinutes(2));
        assertThat(version.exit()).as(version.toString()).isZero();
        assertThat(JSON.readTree(version.output()).path("supportedVersions").valueStream().map(JsonNode::asText))
                .contains("1.0.0");
    }

    /**
     * {@code args} in the unpacked image, as a runtime starts it: its own mount and PID namespaces
     * with /proc, the host's /dev bound (a runtime gives a container a /dev), chrooted, the image's
     * environment only, as {@code user}.
     */
    static List<String> inside(String user, String... args) throws IOException {
        return inside(user, Map.of(), args);
    }

    /** {@link #inside(String, String...)} with host directories bound at paths of the image ({@code mounts}). */
    static List<String> inside(String user, Map<Path, String> mounts, String... args) throws IOException {
        StringBuilder binds = new StringBuilder("mount --rbind /dev \"$0\"/dev");
        for (Map.Entry<Path, String> m : mounts.entrySet()) {
            Files.createDirectories(rootfs.resolve(m.getValue().substring(1)));
            binds.append(" && mount --bind '").append(m.getKey()).append("' \"$0\"'").append(m.getValue()).append("'");
        }
        List<String> cmd = new ArrayList<>(List.of("unshare", "--mount", "--pid", "--fork", "--kill-child",
                "--mount-proc=" + rootfs
                        .resolve("proc"),
                "sh", "-c", binds + " && exec chroot --userspec=" + user + " \"$0\" /usr/bin/env -i \"$@\"",
                rootfs.toString()));
        config.at("/config/Env").forEach(e -> cmd.add(e.asText()));
        cmd.add("HOME=/home/wisp");
        cmd.addAll(List.of(args));
        return cmd;
    }

    static byte[] blob(Path layout, JsonNode descriptor) throws Exception {
        Path p = blobPath(layout, descriptor);
        assertThat(Files.size(p)).as("size of " + descriptor.path("digest").asText()).isEqualTo(descriptor.path(
                "size").asLong());
        try (InputStream in = Files.newInputStream(p)) {
            assertThat("sha256:" + sha256(in)).isEqualTo(descriptor.path("digest").asText());
        }
        return Files.readAllBytes(p);
    }

    static Path blobPath(Path layout, JsonNode descriptor) {
        String digest = descriptor.path("digest").asText();
        assertThat(digest).matches("sha256:[0-9a-f]{64}");
        return layout.resolve("blobs/sha256").resolve(digest.substring("sha256:".length()));
    }

    static String sha256(InputStream in) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (DigestInputStream d = new DigestInputStream(in, md)) {
            d.transferTo(java.io.OutputStream.nullOutputStream());
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static String line(String output, String prefix) {
        return output.lines().filter(l -> l.startsWith(prefix)).map(l -> l.substring(prefix.length())).findFirst()
                .orElseThrow(() -> new AssertionError("no line '" + prefix + "' in:\n" + output));
    }

    /** A finished command: its exit status, stdout, and stderr. */
    record Run(int exit, String output, String errors) {
        @Override
        public String toString() {
            return "exit " + exit + "\n" + output + "\n" + errors;
        }
    }

    static Run run(List<String> cmd, Duration timeout) throws Exception {
        Path stdout = Files.createTempFile(dir, "run", ".out");
        Path stderr = Files.createTempFile(dir, "run", ".err");
        Process p = new ProcessBuilder(cmd).redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start();
        if (!p.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            throw new AssertionError(String.join(" ", cmd) + " did not finish within " + timeout + ":\n" + Files
                    .readString(stderr, StandardCharsets.UTF_8));
        }
        return new Run(p.exitValue(), Files.readString(stdout, StandardCharsets.UTF_8), Files.readString(stderr,
                StandardCharsets.UTF_8));
    }
}
