package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.wisp.local.Cgroups;
import dev.wisp.local.LocalCluster;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code wisp cni} run as the container runtime runs a chained plugin (a child process: the CNI
 * environment, the network configuration with {@code prevResult} on stdin, the result on stdout),
 * against a running agent and a real pod network namespace, with the pod's cgroup where the
 * kubelet's cgroupfs driver puts a BestEffort pod ({@code kubepods/besteffort/pod<uid>}). The pod
 * {@code client} is first taken out of capture (its pod file removed), then enrolled again by the
 * plugin alone: ADD returns only once the agent has captured it, and the pod's very first call
 * after that is carried over HBONE. With no agent watching the pods directory the ADD fails with
 * the spec's error JSON and a non-zero exit; DEL twice is fine. The enrolling ADD's configuration
 * is the one {@code wisp cni install} chained into a ptp conflist, as the runtime would pass it.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CniEnrollmentE2eTest extends ClientServerMeshCase {
    static final String CLUSTER = "k8scni";
    static final ObjectMapper JSON = new ObjectMapper();
    private final PodApps.Started started = new PodApps.Started();

    CniEnrollmentE2eTest() {
        super(CLUSTER, 42, 9000, 9001);
    }

    record Cni(int exit, String stdout, String stderr) {}

    /** Runs {@code wisp cni} with {@code command} for pod default/client and {@code config} on stdin. */
    Cni cni(String command, String netns, String config) throws Exception {
        return wisp(List.of("cni"), Map.of("CNI_COMMAND", command, "CNI_CONTAINERID", "sandbox-client-1", "CNI_NETNS",
                netns, "CNI_IFNAME", "eth0", "CNI_PATH", "/opt/cni/bin", "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=client;K8S_POD_UID=client"), config);
    }

    /** Runs {@code wisp ARGS} as a child process with {@code env} added and {@code stdin}. */
    Cni wisp(List<String> args, Map<String, String> env, String stdin) throws Exception {
        return wisp(List.of(), args, env, stdin);
    }

    /** {@link #wisp(List, Map, String)} started through {@code prefix} (e.g. setpriv). */
    Cni wisp(List<String> prefix, List<String> args, Map<String, String> env, String stdin) throws Exception {
        List<String> command = new ArrayList<>(prefix);
        command.addAll(PodApps.wisp(List.of("-Xmx64m", "-XX:TieredStopAtLevel=1"), args));
        ProcessBuilder b = new ProcessBuilder(command);
        b.environment().putAll(env);
        Path err = Files.createTempFile("wisp-cni", ".err");
        b.redirectError(err.toFile());
        Process p = b.start();
        try (OutputStream in = p.getOutputStream()) {
            in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).as("wisp " + args + " ended").isTrue();
        String stderr = Files.readString(err);
        Files.delete(err);
        return new Cni(p.exitValue(), out, stderr);
    }

    /**
     * What the runtime hands wisp-cni once {@code wisp cni install} has chained it into a node's ptp
     * conflist (in {@code node}): the entry the installer wrote, with the conflist's version and name,
     * and the primary plugin's result as {@code prevResult}, as libcni builds a chained call. The
     * installer runs as the chart runs it: user 0 with an empty capability bounding set.
     */
    String installedConfig(Path node, Path podsDir, Path cgroupRoot) throws Exception {
        Path bin = Files.createDirectories(node.resolve("opt/cni/bin"));
        Path conf = Files.createDirectories(node.resolve("etc/cni/net.d"));
        Files.writeString(conf.resolve("10-ptp.conflist"), """
                {"cniVersion": "1.0.0", "name": "k8s-pod-network", "plugins": [
                  {"type": "ptp", "ipam": {"type": "host-local", "subnet": "10.42.0.0/16"}},
                  {"type": "portmap", "capabilities": {"portMappings": true}}]}
                """);
        Path launcher = Files.writeString(node.resolve("launcher"), "#!/bin/sh\n");
        // As the chart's install-cni container runs it: root with no capability at all.
        Cni install = wisp(List.of("setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--ambient-caps",
                "-all", "--"),
                List.of("cni", "install", "--once", "--cni-bin-dir=" + bin, "--cni-conf-dir=" + conf,
                        "--launcher=" + launcher, "--pods-dir=" + podsDir, "--cgroup-root=" + cgroupRoot,
                        "--netns-dir=/var/run/netns", "--enroll-timeout=60"),
                Map.of(), "");
        assertThat(install.exit()).as(install.stdout() + install.stderr()).isZero();
        assertThat(bin.resolve("wisp-cni")).isExecutable();
        JsonNode list = JSON.readTree(conf.resolve("10-ptp.conflist").toFile());
        assertThat(list.path("plugins").valueStream().map(p -> p.path("type").asText())).containsExactly("ptp",
                "portmap", "wisp-cni");
        LocalCluster.Pod pod = mesh.pod("client");
        ObjectNode call = ((ObjectNode) list.at("/plugins/2")).deepCopy();
        call.put("cniVersion", list.path("cniVersion").asText()).put("name", list.path("name").asText());
        call.set("prevResult", JSON.readTree("""
                {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/%s"}],
                 "ips": [{"address": "%s/24", "interface": 0}]}
                """.formatted(pod.netns(), pod.ip())));
        return call.toString();
    }

    String config(Path podsDir, Path cgroupRoot, int timeoutSeconds) {
        LocalCluster.Pod pod = mesh.pod("client");
        return """
                {"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "wisp-cni",
                 "podsDir": "%s", "cgroupRoot": "%s", "netnsDirs": ["/var/run/netns"], "enrollTimeoutSeconds": %d,
                 "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/%s"}],
                   "ips": [{"address": "%s/24", "interface": 0}]}}
                """.formatted(podsDir, cgroupRoot, timeoutSeconds, pod.netns(), pod.ip());
    }

    @Test
    @Order(1)
    void aPodEnrolledByThePluginIsCapturedBeforeItsFirstCall(@TempDir Path node) throws Exception {
        client.awaitAnswers(server, 9000, "server 5", true, Duration.ofSeconds(30));
        LocalCluster.Pod pod = mesh.pod("client");
        Path podsDir = mesh.podsDir("node1");
        mesh.cluster().deletePodFile(pod, podsDir);
        await().atMost(Duration.ofSeconds(30)).until(() -> mesh.log("node1").contains(
                "removed pod client from capture"));
        Path kubelet = Cgroups.wispRoot().resolve(CLUSTER).resolve("kubelet");
        Path podCgroup = Files.createDirectories(kubelet.resolve("kubepods").resolve("besteffort").resolve(
                "podclient"));
        String netns = "/var/run/netns/" + pod.netns();

        // The plugin runs as `wisp cni install` chained it into the node's configuration.
        Cni add = cni("ADD", netns, installedConfig(node, podsDir, kubelet));
        assertThat(add.exit()).as(add.stdout() + add.stderr()).isZero();
        assertThat(JSON.readTree(add.stdout()).at("/ips/0/address").asText()).isEqualTo(pod.ip() + "/24");
        // ADD answered only after the agent had captured the pod in its kubelet cgroup.
        assertThat(mesh.log("node1")).contains("enrolled pod client (cgroup " + podCgroup + ", netns " + netns);
        assertThat(Files.readString(podsDir.resolve("client.enrolled"))).isEqualTo(netns);
        try (var files = Files.list(podsDir)) {
            assertThat(files.map(f -> f.getFileName().toString())).containsExactlyInAnyOrder("client.json",
                    "client.enrolled");
        }

        // The pod's first connection on port 9001 (no call went there before) is captured.
        PodApps.Shell first = new PodApps.Shell(started.inCgroup(podCgroup, pod.netns(), PodApps.java(PodClient.class,
                "repl")), "client");
        assertThat(first.call(server, 9001, 5)).isEqualTo("ok server 5");
        PodApps.assertCarriedOverHbone(mesh, "client", "server", 9001);

        Cni del = cni("DEL", netns, config(podsDir, kubelet, 60));
        assertThat(del).isEqualTo(new Cni(0, "", del.stderr()));
        assertThat(podsDir.resolve("client.json")).doesNotExist();
        await().atMost(Duration.ofSeconds(30)).until(() -> !Files.exists(podsDir.resolve("client.enrolled")));
        Cni again = cni("DEL", netns, config(podsDir, kubelet, 60));
        assertThat(again.exit()).as(again.stdout()).isZero();
    }

    @Test
    @Order(2)
    void withNoAgentTheAddFailsWithACniErrorAndHostileInputIsRefused(@TempDir Path nobody) throws Exception {
        Path kubelet = Cgroups.wispRoot().resolve(CLUSTER).resolve("kubelet");
        String netns = "/var/run/netns/" + mesh.pod("client").netns();
        Cni add = cni("ADD", netns, config(nobody, kubelet, 2));
        assertThat(add.exit()).as(add.stdout()).isEqualTo(11);
        JsonNode err = JSON.readTree(add.stdout());
        assertThat(err.path("code").asInt()).isEqualTo(11);
        assertThat(err.path("msg").asText()).contains("did not confirm enrolling pod default/client");
        assertThat(nobody.resolve("client.json")).doesNotExist();

        Cni outside = cni("ADD", "/etc/passwd", config(nobody, kubelet, 2));
        assertThat(outside.exit()).isEqualTo(4);
        assertThat(JSON.readTree(outside.stdout()).path("msg").asText()).contains("is not in [/var/run/netns]");
        Cni garbage = cni("ADD", netns, "{\"cniVersion\": ");
        assertThat(garbage.exit()).isEqualTo(6);
        assertThat(nobody.toFile().list()).isEmpty();
    }

    /**
     * The install container's life: watching, it puts Wisp back into a conflist the primary plugin
     * rewrote; on SIGTERM it leaves the plugin chained (by default: a pod started while the agent's
     * pod is replaced still waits for the agent), and with {@code --remove-on-exit} takes Wisp out
     * and removes the launcher; started without its launcher it exits 1 saying so and chains nothing.
     */
    @Test
    @Order(3)
    void theInstallerKeepsThePluginChainedAcrossItsOwnExit(@TempDir Path node) throws Exception {
        Path bin = Files.createDirectories(node.resolve("bin"));
        Path conf = Files.createDirectories(node.resolve("net.d"));
        String ptp = "{\"cniVersion\": \"1.0.0\", \"name\": \"k\", \"plugins\": [{\"type\": \"ptp\"}]}";
        Path conflist = Files.writeString(conf.resolve("10-ptp.conflist"), ptp);
        Path launcher = Files.writeString(node.resolve("launcher"), "#!/bin/sh\n");
        List<String> args = List.of("cni", "install", "--cni-bin-dir=" + bin, "--cni-conf-dir=" + conf,
                "--launcher=" + launcher);
        Process p = installer(args, node.resolve("install.log"));
        await().atMost(Duration.ofSeconds(60)).until(() -> Files.readString(conflist).contains("wisp-cni"));
        Files.writeString(conflist, ptp); // the primary plugin rewrites its file
        await().atMost(Duration.ofSeconds(30)).until(() -> Files.readString(conflist).contains("wisp-cni"));
        p.destroy(); // SIGTERM, as the kubelet stops the container
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(JSON.readTree(conflist.toFile()).path("plugins").valueStream().map(e -> e.path("type").asText()))
                .containsExactly("ptp", "wisp-cni");
        assertThat(bin.resolve("wisp-cni")).isExecutable();
        assertThat(Files.readString(node.resolve("install.log"))).contains("wisp-cni stays chained in " + conf);

        List<String> removing = new ArrayList<>(args);
        removing.add("--remove-on-exit");
        Files.writeString(conflist, ptp);
        Process old = installer(removing, node.resolve("install-old.log"));
        await().atMost(Duration.ofSeconds(60)).until(() -> Files.readString(conflist).contains("wisp-cni"));
        old.destroy();
        assertThat(old.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(JSON.readTree(conflist.toFile())).isEqualTo(JSON.readTree(ptp));
        assertThat(bin.resolve("wisp-cni")).doesNotExist();

        Files.delete(launcher);
        String before = Files.readString(conflist);
        Cni missing = wisp(args, Map.of(), "");
        assertThat(missing.exit()).isEqualTo(1);
        assertThat(missing.stderr()).contains("the plugin's launcher is missing");
        assertThat(Files.readString(conflist)).isEqualTo(before);
    }

    /**
     * Wisp in its own conflist ({@code wisp cni install --own-conflist-dir}, for Multus): the call
     * Multus makes from it carries no {@code prevResult}, so the plugin, a child process as before,
     * finds the pod's addresses (IPv4 and IPv6 of its eth0) inside its real network namespace; the
     * agent captures the pod with them and the result is the empty one of version 1.0.0. The runtime's ptp conflist is
     * left as it was.
     */
    @Test
    @Order(4)
    void inItsOwnConflistThePluginEnrollsThePodWithTheAddressOfItsNamespace(@TempDir Path node) throws Exception {
        LocalCluster.Pod pod = mesh.pod("client");
        Path podsDir = mesh.podsDir("node1");
        Path kubelet = Cgroups.wispRoot().resolve(CLUSTER).resolve("kubelet");
        Path podCgroup = Files.createDirectories(kubelet.resolve("kubepods/besteffort/podclient"));
        String netns = "/var/run/netns/" + pod.netns();
        Files.deleteIfExists(podsDir.resolve("client.json"));
        await().atMost(Duration.ofSeconds(30)).until(() -> !Files.exists(podsDir.resolve("client.enrolled")));
        Path bin = Files.createDirectories(node.resolve("opt/cni/bin"));
        Path conf = Files.createDirectories(node.resolve("etc/cni/net.d"));
        String ptp = "{\"cniVersion\": \"1.0.0\", \"name\": \"k\", \"plugins\": [{\"type\": \"ptp\"}]}";
        Path primary = Files.writeString(conf.resolve("10-ptp.conflist"), ptp);
        Path multus = node.resolve("etc/cni/multus/net.d");
        Path launcher = Files.writeString(node.resolve("launcher"), "#!/bin/sh\n");
        Cni install = wisp(List.of("cni", "install", "--once", "--cni-bin-dir=" + bin, "--cni-conf-dir=" + conf,
                "--own-conflist-dir=" + multus, "--launcher=" + launcher, "--pods-dir=" + podsDir, "--cgroup-root="
                        + kubelet,
                "--netns-dir=/var/run/netns", "--enroll-timeout=60"), Map.of(), "");
        assertThat(install.exit()).as(install.stdout() + install.stderr()).isZero();
        assertThat(Files.readString(primary)).isEqualTo(ptp);
        JsonNode list = JSON.readTree(multus.resolve("wisp-cni.conflist").toFile());
        ObjectNode call = ((ObjectNode) list.at("/plugins/0")).deepCopy();
        call.put("cniVersion", list.path("cniVersion").asText()).put("name", list.path("name").asText());

        String enrolled = "enrolled pod client (cgroup " + podCgroup + ", netns " + netns;
        int before = mesh.log("node1").split(java.util.regex.Pattern.quote(enrolled), -1).length;
        Cni add = cni("ADD", netns, call.toString());
        assertThat(add.exit()).as(add.stdout() + add.stderr()).isZero();
        assertThat(JSON.readTree(add.stdout())).isEqualTo(JSON.readTree("{\"cniVersion\": \"1.0.0\"}"));
        assertThat(mesh.log("node1").split(java.util.regex.Pattern.quote(enrolled), -1).length).as(
                "enrolled once more").isGreaterThan(before);
        JsonNode file = JSON.readTree(podsDir.resolve("client.json").toFile());
        // Both addresses the pod's namespace holds (its eth0 carries IPv4 and IPv6), nothing else.
        assertThat(file.path("ips").valueStream().map(a -> java.net.InetAddress.ofLiteral(a.asText())).toList()).as(
                "the addresses read in the pod's namespace").containsExactly(java.net.InetAddress.ofLiteral(pod.ip()),
                        java.net.InetAddress.ofLiteral(pod.ip6()));
        assertThat(cni("DEL", netns, call.toString()).exit()).isZero();
    }

    /** {@code wisp ARGS} (an installer) started in the background, its output to {@code log}. */
    Process installer(List<String> args, Path log) throws IOException {
        Process p = new ProcessBuilder(PodApps.wisp(List.of("-Xmx64m", "-XX:TieredStopAtLevel=1"), args))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        return started.add(p);
    }

    @AfterAll
    void stopStarted() throws InterruptedException {
        started.close();
    }
}
