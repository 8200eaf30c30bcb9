package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.wisp.local.Cgroups;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.LocalMesh;
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
import java.nio.file.LinkOption;
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
    static final String CLUSTER = "k8simg";
    /** Where the agents' Java WireGuard devices put their UAPI sockets: the host's, as the chart mounts it. */
    static final Path UAPI = Path.of("/var/run/wireguard");
    /** The local mesh whose agents run from the image (base 88). */
    static LocalMesh mesh;
    /** A node's CNI directories and {@code cni.runtimeDir}, as the host has them. */
    static Path node;
    static final PodApps.Started started = new PodApps.Started();

    @BeforeAll
    static void build() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("tar", "gzip", "jq", "sha256sum", "skopeo", "umoci", "unshare", "chroot");
        out = dir.resolve("image");
        node = dir.resolve("node");
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
        started.close();
        PodApps.down(mesh, CLUSTER);
        if (rootfs != null) {
            // Nothing runs in the image's root any more: not the agents, nothing they or a test started.
            Path jar = rootfs.resolve("opt/wisp/lib/wisp-cli.jar");
            List<ProcessHandle> inside = ProcessHandle.allProcesses().filter(h -> sameFile(Path.of("/proc", String
                    .valueOf(h.pid()), "root/opt/wisp/lib/wisp-cli.jar"), jar)).toList();
            inside.forEach(ProcessHandle::destroyForcibly);
            assertThat(inside.stream().map(h -> h.pid() + " " + h.info().commandLine().orElse("?"))).as(
                    "processes in the image's root after the class").isEmpty();
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
        // The agent runs ip(8) for the pods' reply paths; an image without it made every pod fall
        // back to the agent's address, which only the agent's log said.
        try (var found = Files.find(rootfs, 3, (f, attrs) -> attrs.isRegularFile() && f.getFileName().toString()
                .equals("ip") && f.getParent().getFileName().toString().matches("s?bin"))) {
            assertThat(found.toList()).as("ip(8) in the image's bin or sbin").isNotEmpty();
        }
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
     * The chart's node agent run from the image as the DaemonSet runs it ({@link ContainerRuntime}):
     * read-only root, drop ALL and add exactly {@code node.capabilities} of the chart's values, root,
     * the host's {@code /sys/fs/bpf}, cgroup root (read-only) and {@code /var/run/netns} (read-only,
     * host mounts propagating in) bound at their paths, the mesh's work directory (pods directory,
     * node credential, CA bundle) in place of the chart's pods directory, token and ConfigMap. Both
     * nodes' agents are the image's Java with libbpf of the image mapped, and pod client's call to
     * pod server is captured and carried over HBONE. WireGuard is on as {@code wireguard.enabled}
     * turns it on (the next case).
     */
    @Test
    @Order(5)
    void theNodeAgentRunsFromTheImageAsTheChartRunsItAndCapturesAPodsCallOverHbone() throws Exception {
        Prerequisites.requireCommands("capsh", "ip", "nsenter");
        Path work = dir.resolve("mesh");
        List<String> capabilities = AgentCapabilitiesE2eTest.chartCapabilities();
        ContainerRuntime agent = container(capabilities, List.of(new ContainerRuntime.Volume(Path.of("/sys/fs/bpf"),
                "/sys/fs/bpf", false), new ContainerRuntime.Volume(Path.of("/sys/fs/cgroup"), "/sys/fs/cgroup", true),
                new ContainerRuntime.Volume(Path.of("/var/run/netns"), "/var/run/netns", true),
                new ContainerRuntime.Volume(work, work.toString(), false),
                // wireguard.enabled's mounts: the host's TUN device and UAPI directory (the key's
                // directory is in the work directory, as the node's state directory).
                new ContainerRuntime.Volume(Path.of("/dev/net/tun"), "/dev/net/tun", false),
                new ContainerRuntime.Volume(Files.createDirectories(UAPI), UAPI.toString(), false)));
        mesh = PodApps.upWithServer(PodApps.clientServerMesh(CLUSTER, 88, work).wireguardPodCidrsFromNodes()
                .agentCommand(agent.command(List.of("/opt/wisp/bin/wisp"))), 9000);

        Path libbpf;
        try (var files = Files.walk(rootfs.resolve("usr"))) {
            libbpf = files.filter(f -> f.getFileName().toString().startsWith("libbpf.so") && Files.isRegularFile(f,
                    LinkOption.NOFOLLOW_LINKS)).findFirst()
                    .orElseThrow(() -> new AssertionError("no libbpf in the image"));
        }
        long expected = AgentCapabilitiesE2eTest.mask(capabilities);
        for (String node : List.of("node1", "node2")) {
            // The agent's JVM: the process the mesh started, or below it if anything on the way forked.
            ProcessHandle started = mesh.agentProcess(node).orElseThrow().toHandle();
            List<ProcessHandle> chain = new ArrayList<>(List.of(started));
            chain.addAll(started.descendants().toList());
            ProcessHandle jvm = chain.stream().filter(h -> h.info().command().orElse("").endsWith(
                    "/opt/wisp/java/bin/java")).findFirst().orElseThrow(() -> new AssertionError(node
                            + "'s agent runs no /opt/wisp/java/bin/java: " + chain.stream().map(h -> h.pid() + " "
                                    + h.info().commandLine().orElse("?")).toList()));
            long pid = jvm.pid();
            Path proc = Path.of("/proc", String.valueOf(pid));
            String status = Files.readString(proc.resolve("status"));
            for (String set : List.of("CapBnd", "CapPrm", "CapEff")) {
                assertThat(AgentCapabilitiesE2eTest.capSet(status, set)).as(node + "'s agent's " + set).isEqualTo(
                        expected);
            }
            assertThat(AgentCapabilitiesE2eTest.capSet(status, "CapInh") | AgentCapabilitiesE2eTest.capSet(status,
                    "CapAmb")).as(node + "'s inheritable and ambient sets").isZero();
            assertThat(status).containsPattern("(?m)^Uid:\\s+0\\s");
            assertThat(pid).as(node + "'s agent's JVM is the process the mesh started (every step execs)").isEqualTo(
                    started.pid());
            assertThat(Files.readSymbolicLink(proc.resolve("exe")).toString()).endsWith("/opt/wisp/java/bin/java");
            assertThat(Files.isSameFile(proc.resolve("root/opt/wisp/lib/wisp-cli.jar"), rootfs.resolve(
                    "opt/wisp/lib/wisp-cli.jar"))).as(node + "'s agent's root is the image's").isTrue();
            assertThat(Files.readString(proc.resolve("mountinfo")).lines().map(l -> l.split(" ")).filter(f -> f[4]
                    .equals("/")).findFirst().orElseThrow()[5]).as(node + "'s agent's root mount").startsWith("ro");
            // The capture programs were loaded by the image's libbpf, not the host's.
            Object inode = Files.getAttribute(libbpf, "unix:ino");
            assertThat(Files.readString(proc.resolve("maps")).lines().map(l -> l.split("\\s+")).filter(f -> f.length > 5
                    && f[5].contains("libbpf.so"))).as(node + "'s agent's libbpf mapping").isNotEmpty().allSatisfy(
                            f -> assertThat(Long.parseLong(f[4])).isEqualTo(inode));
        }
        assertThat(mesh.log("node1")).contains("capture: enrolled pod client (cgroup");
        String server = mesh.pod("server").ip();
        PodApps.Shell client = new PodApps.Shell(mesh, "client");
        client.awaitAnswers(server, 9000, "server 5", true, Duration.ofSeconds(60));
        assertThat(client.call(server, 9000, 777)).isEqualTo("ok server 777");
        PodApps.assertCarriedOverHbone(mesh, "client", "server", 9000);
    }

    /**
     * WireGuard as {@code wireguard.enabled} runs it, on the agents of the case before: the chart's
     * two capabilities, the host's {@code /dev/net/tun} bound in (the Java device: this kernel has no
     * WireGuard module), the UAPI directory, no {@code --wireguard-pod-cidr} (each agent registers no
     * CIDR; its Node's declared one is what the control plane serves). A UDP echo between pods of the
     * two nodes crosses the underlay only as WireGuard transport messages, the payload nowhere in
     * clear; the private key is 0600 in a 0700 directory.
     */
    @Test
    @Order(6)
    void withTheChartsWireGuardMountsAUdpEchoBetweenNodesCrossesOnlyEncrypted() throws Exception {
        Prerequisites.requireCommands("tcpdump");
        assertThat(mesh).as("the case before started the mesh").isNotNull();
        for (String node : List.of("node1", "node2")) {
            long pid = mesh.agentProcess(node).orElseThrow().pid();
            List<String> args = List.of(new String(Files.readAllBytes(Path.of("/proc", String.valueOf(pid),
                    "cmdline")), StandardCharsets.UTF_8).split("\0"));
            assertThat(args).as(node + "'s agent's arguments").contains("--wireguard").noneMatch(a -> a.startsWith(
                    "--wireguard-pod-cidr"));
            assertThat(mesh.log(node)).contains("running the Java device over TUN");
            Path keyDir = dir.resolve("mesh").resolve("wireguard").resolve(node);
            assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(keyDir)))
                    .isEqualTo("rwx------");
            assertThat(java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(keyDir
                    .resolve("wireguard-private.key")))).isEqualTo("rw-------");
        }
        String clientNs = mesh.pod("client").netns();
        java.net.InetAddress server = java.net.InetAddress.ofLiteral(mesh.pod("server").ip());
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        var echo = dev.wisp.testing.Netns.start(mesh.pod("server").netns(), () -> {
            try (var s = new java.net.DatagramSocket(new java.net.InetSocketAddress(MeshWireGuardE2eTest.UDP_PORT))) {
                dev.wisp.cli.demo.UdpEcho.echoUntil(s, stop::get);
            }
            return null;
        });
        try {
            // Both keys registered and the peer installed just in time: an answer comes back.
            List<String> answers = new ArrayList<>();
            await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(500)).failFast(
                    "the server pod's UDP echo stopped", (java.util.concurrent.Callable<Boolean>) echo::isDone)
                    .untilAsserted(() -> {
                        String a = MeshWireGuardE2eTest.udpCall(clientNs, server, "warm-up");
                        answers.add(String.valueOf(a));
                        assertThat(a).as("UDP answers so far %s; control plane log ends %s", answers.subList(Math.max(
                                0, answers.size() - 5), answers.size()), tail(mesh.log("control-plane")))
                                .isEqualTo("warm-up");
                    });
            assertThat(mesh.log("control-plane")).contains("WireGuard key of node node1 registered").contains(
                    "WireGuard key of node node2 registered").doesNotContain("WireGuard registration refused");
            String marker = "WISP-K8S-WG-" + Long.toHexString(System.nanoTime());
            String payload = marker + "-" + "x".repeat(300);
            try (var capture = new MeshWireGuardE2eTest.Capture(mesh.cluster().underlayNetns(), dir, "k8s-wg")) {
                for (int i = 0; i < 3; i++) {
                    assertThat(MeshWireGuardE2eTest.udpCall(clientNs, server, payload)).as("echo " + i).isEqualTo(
                            payload);
                }
                List<MeshWireGuardE2eTest.IpPacket> packets = capture.stop(6);
                MeshWireGuardE2eTest.assertOnlyWireGuard(packets, java.util.Set.of(java.net.InetAddress.ofLiteral(
                        mesh.node("node1").address()), java.net.InetAddress.ofLiteral(mesh.node("node2").address())),
                        java.util.Set.of(server, java.net.InetAddress.ofLiteral(mesh.pod("client").ip())), payload
                                .length());
                assertThat(packets).noneMatch(p -> MeshWireGuardE2eTest.contains(p.whole(), marker.getBytes(
                        StandardCharsets.US_ASCII)));
            }
        } finally {
            stop.set(true);
            echo.get(30, TimeUnit.SECONDS);
        }
    }

    /** The last lines of {@code log}, for a failure message. */
    static String tail(String log) {
        List<String> lines = log.lines().toList();
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
    }

    /**
     * The chart's {@code install-cni} container run from the image exactly as the DaemonSet runs it:
     * read-only root, no capability, root, an emptyDir at /tmp, the host's CNI directories at their own
     * paths and {@code cni.runtimeDir} under {@code /host}. It chains the plugin, copies the image's
     * Java runtime and jars to the host and writes the launcher into the CNI bin directory. Then the
     * container runtime's calls, on the host, outside the image, with only the CNI environment and the
     * chained entry (with {@code prevResult}) on stdin: VERSION answers, and ADD for pod client (its
     * pod file removed first, its cgroup where the kubelet's cgroupfs driver puts it) returns only once
     * the image's agent enrolled it; the pod's first call from there is carried over HBONE.
     */
    @Test
    @Order(7)
    void installCniAsTheChartRunsItPutsThePluginOnTheHostAndItsAddEnrollsAPod() throws Exception {
        assertThat(mesh).as("the image's agents (the case before)").isNotNull();
        Path bin = Files.createDirectories(node.resolve("opt/cni/bin"));
        Path conf = Files.createDirectories(node.resolve("etc/cni/net.d"));
        Files.createDirectories(node.resolve("opt/wisp-cni"));
        Files.writeString(conf.resolve("10-ptp.conflist"), """
                {"cniVersion": "1.0.0", "name": "k8s-pod-network", "plugins": [
                  {"type": "ptp", "ipam": {"type": "host-local", "subnet": "10.42.0.0/16"}}]}
                """);
        // The container as the runtime makes it: what a process in it can do.
        Run probe = run(installCni(List.of()).command(List.of("/bin/sh", "-c",
                "id -u; grep ^Cap /proc/self/status; echo x > /etc/probe")), Duration.ofMinutes(1));
        assertThat(probe.exit()).as(probe.toString()).isNotZero();
        assertThat(probe.output()).startsWith("0\n").contains("CapBnd:\t0000000000000000").contains(
                "CapEff:\t0000000000000000");
        assertThat(probe.errors()).contains("Read-only file system");

        Run install = run(installCni(List.of()).command(installArgs()), Duration.ofMinutes(3));
        assertThat(install.exit()).as(install.toString()).isZero();
        assertThat(install.output()).contains("wisp-cni chained in /etc/cni/net.d");
        JsonNode list = JSON.readTree(conf.resolve("10-ptp.conflist").toFile());
        assertThat(list.at("/plugins/1/type").asText()).isEqualTo("wisp-cni");
        Path copy = onlyCopy();
        assertThat(copy.getFileName().toString()).matches("wisp-[0-9a-f]{16}");
        assertThat(copy.resolve("java/bin/java")).isExecutable();
        assertThat(copy.resolve("lib/wisp-cli.jar")).hasSameBinaryContentAs(rootfs.resolve(
                "opt/wisp/lib/wisp-cli.jar"));
        Path launcher = bin.resolve("wisp-cni");
        assertThat(launcher).isExecutable();
        assertThat(Files.readString(launcher)).contains("exec '" + copy.resolve("java/bin/java") + "' ");

        Run version = cni("VERSION", "{\"cniVersion\": \"1.0.0\"}");
        assertThat(version.exit()).as(version.toString()).isZero();
        assertThat(JSON.readTree(version.output()).path("supportedVersions").valueStream().map(JsonNode::asText))
                .contains("1.0.0");

        LocalCluster.Pod pod = mesh.pod("client");
        mesh.cluster().deletePodFile(pod, mesh.podsDir("node1"));
        await().atMost(Duration.ofSeconds(60)).until(() -> mesh.log("node1").contains(
                "removed pod client from capture"));
        Path podCgroup = Files.createDirectories(kubelet().resolve("kubepods/besteffort/podclient"));
        Run add = cni("ADD", chained(list, null));
        assertThat(add.exit()).as(add.toString()).isZero();
        assertThat(JSON.readTree(add.output()).at("/ips/0/address").asText()).isEqualTo(pod.ip() + "/24");
        assertThat(mesh.log("node1")).contains("enrolled pod client (cgroup " + podCgroup + ", netns /var/run/netns/"
                + pod.netns());
        PodApps.Shell first = new PodApps.Shell(started.inCgroup(podCgroup, pod.netns(), PodApps.java(
                PodClient.class, "repl")), "client");
        assertThat(first.call(mesh.pod("server").ip(), 9000, 5)).isEqualTo("ok server 5");
        PodApps.assertCarriedOverHbone(mesh, "client", "server", 9000);
    }

    /**
     * A plugin call under way while the next image's installer replaces the runtime: ADD runs on the
     * current copy (its JVM up, waiting for the agent's confirmation, here given by the test), an
     * installer with one more jar in {@code /opt/wisp/lib} copies a second runtime and points the
     * launcher at it, keeping the copy the call runs on; the call then ends as any ADD does. The
     * installer after that removes the old copy.
     */
    @Test
    @Order(8)
    void aPluginCallUnderWayKeepsItsRuntimeWhileTheNextInstallerReplacesIt() throws Exception {
        Path old = onlyCopy();
        Path pods = Files.createDirectories(dir.resolve("confirming-pods"));
        LocalCluster.Pod pod = mesh.pod("client");
        JsonNode list = JSON.readTree(node.resolve("etc/cni/net.d/10-ptp.conflist").toFile());
        Path request = Files.writeString(dir.resolve("add-under-way.json"), chained(list, pods));
        Path out = dir.resolve("add-under-way.out");
        Process call = new ProcessBuilder(cniCommand("ADD", request)).redirectOutput(out.toFile()).redirectError(dir
                .resolve("add-under-way.err").toFile()).start();
        started.add(call);
        await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(100)).until(() -> {
            assertThat(call.isAlive()).as(() -> "the ADD under way: " + PodApps.read(dir.resolve("add-under-way.err")))
                    .isTrue();
            return Files.exists(pods.resolve("client.json"));
        });

        // The next image: the same jars and one more.
        Path lib = Files.createDirectories(dir.resolve("next-image-lib"));
        try (var jars = Files.list(rootfs.resolve("opt/wisp/lib"))) {
            for (Path jar : jars.toList()) {
                Files.copy(jar, lib.resolve(jar.getFileName()));
            }
        }
        try (var jar = new java.util.jar.JarOutputStream(Files.newOutputStream(lib.resolve("wisp-next.jar")))) {
            jar.putNextEntry(new java.util.zip.ZipEntry("next.txt"));
            jar.write("the next image".getBytes(StandardCharsets.UTF_8));
        }
        List<ContainerRuntime.Volume> next = List.of(new ContainerRuntime.Volume(lib, "/opt/wisp/lib", true));
        Run install = run(installCni(next).command(installArgs()), Duration.ofMinutes(3));
        assertThat(install.exit()).as(install.toString()).isZero();
        Path launcher = node.resolve("opt/cni/bin/wisp-cni");
        List<Path> copies = copies();
        assertThat(copies).as("the new copy and the one the call runs on").hasSize(2).contains(old);
        Path fresh = copies.stream().filter(c -> !c.equals(old)).findFirst().orElseThrow();
        assertThat(Files.readString(launcher)).contains("exec '" + fresh.resolve("java/bin/java") + "' ");

        Files.writeString(pods.resolve("client.enrolled"), "/var/run/netns/" + pod.netns());
        assertThat(call.waitFor(120, TimeUnit.SECONDS)).as("the ADD under way ended").isTrue();
        assertThat(call.exitValue()).as(() -> PodApps.read(dir.resolve("add-under-way.err"))).isZero();
        assertThat(JSON.readTree(out.toFile()).at("/ips/0/address").asText()).isEqualTo(pod.ip() + "/24");

        Run again = run(installCni(next).command(installArgs()), Duration.ofMinutes(3));
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(copies()).containsExactly(fresh);
        assertThat(cni("VERSION", "{\"cniVersion\": \"1.0.0\"}").exit()).isZero();
    }

    /** The chart's install-cni container, with {@code more} volumes (e.g. another image's jars). */
    ContainerRuntime installCni(List<ContainerRuntime.Volume> more) {
        List<ContainerRuntime.Volume> volumes = new ArrayList<>(List.of(new ContainerRuntime.Volume(node.resolve(
                "opt/cni/bin"), "/opt/cni/bin", false), new ContainerRuntime.Volume(node.resolve("etc/cni/net.d"),
                        "/etc/cni/net.d", false),
                new ContainerRuntime.Volume(node.resolve("opt/wisp-cni"), "/host/opt/wisp-cni", false)));
        volumes.addAll(more);
        return container(List.of(), volumes);
    }

    /** install-cni's arguments as the chart renders them (the node's paths here), once. */
    List<String> installArgs() {
        return List.of("/opt/wisp/bin/wisp", "cni", "install", "--once", "--cni-bin-dir=/opt/cni/bin",
                "--cni-conf-dir=/etc/cni/net.d", "--pods-dir=" + mesh.podsDir("node1"), "--cgroup-root=" + kubelet(),
                "--netns-dir=/var/run/netns", "--enroll-timeout=60", "--copy-runtime-to=/host/opt/wisp-cni",
                "--host-runtime-dir=" + node.resolve("opt/wisp-cni"));
    }

    /** The kubelet's cgroup root of the cluster (cgroupfs driver's layout below it). */
    static Path kubelet() {
        return Cgroups.wispRoot().resolve(CLUSTER).resolve("kubelet");
    }

    /**
     * The chained entry as libcni passes it for pod client: the installed entry with the conflist's
     * version and name, ptp's result as {@code prevResult}, and its pods directory {@code pods} when
     * not null.
     */
    String chained(JsonNode list, Path pods) {
        LocalCluster.Pod pod = mesh.pod("client");
        ObjectNode call = ((ObjectNode) list.at("/plugins/1")).deepCopy();
        call.put("cniVersion", list.path("cniVersion").asText()).put("name", list.path("name").asText());
        if (pods != null) {
            call.put("podsDir", pods.toString()).put("enrollTimeoutSeconds", 120);
        }
        try {
            call.set("prevResult", JSON.readTree("""
                    {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/%s"}],
                     "ips": [{"address": "%s/24", "interface": 0}]}
                    """.formatted(pod.netns(), pod.ip())));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return call.toString();
    }

    /** The node's launcher run as the container runtime runs a plugin, {@code stdin} its input. */
    Run cni(String command, String stdin) throws Exception {
        Path request = Files.writeString(Files.createTempFile(dir, "cni", ".json"), stdin);
        return run(cniCommand(command, request), Duration.ofMinutes(3));
    }

    /** On the host, its environment the CNI variables for pod client only, {@code request} on stdin. */
    List<String> cniCommand(String command, Path request) {
        LocalCluster.Pod pod = mesh.pod("client");
        return List.of("sh", "-c", "exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=" + command
                + " CNI_CONTAINERID=sandbox-client-2 CNI_NETNS=/var/run/netns/" + pod.netns() + " CNI_IFNAME=eth0"
                + " CNI_PATH=/opt/cni/bin CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=client;"
                + "K8S_POD_UID=client' \"$0\" < \"$1\"", node.resolve("opt/cni/bin/wisp-cni").toString(),
                request
                        .toString());
    }

    static List<Path> copies() throws IOException {
        try (var list = Files.list(node.resolve("opt/wisp-cni"))) {
            return list.toList();
        }
    }

    static Path onlyCopy() throws IOException {
        List<Path> copies = copies();
        assertThat(copies).hasSize(1);
        return copies.getFirst();
    }

    /** A container of the chart from the unpacked image, with the image's environment. */
    static ContainerRuntime container(List<String> capabilities, List<ContainerRuntime.Volume> volumes) {
        List<String> env = new ArrayList<>();
        config.at("/config/Env").forEach(e -> env.add(e.asText()));
        env.add("HOME=/home/wisp");
        return new ContainerRuntime(rootfs, env, capabilities, true, volumes);
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

    static boolean sameFile(Path a, Path b) {
        try {
            return Files.isSameFile(a, b);
        } catch (IOException | SecurityException e) {
            return false; // gone, or a kernel thread
        }
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
