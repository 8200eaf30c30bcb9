package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.local.Cgroups;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.local.Sh;
import dev.wisp.testing.Prerequisites;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Pods already running when the agent arrives, with no CNI call to announce them: the agents run
 * with {@code --discover-pods}, the kubelet's cgroup layout under the cluster's own cgroup root and
 * the runtime's namespaces in {@code /var/run/netns}. Pod {@code client} is taken out of capture
 * (its pod file removed, as if no plugin had ever seen it), its app started in its kubelet cgroup
 * ({@code kubepods/besteffort/podclient}) and network namespace, then node 1's agent restarts: it
 * finds the pod from the control plane's list (uid and address) and the host (that cgroup, the one
 * namespace holding that address), writes its pod file and captures it, and the app's first call
 * is carried over HBONE with the client's SPIFFE ID. A "pod" the control plane does not list (its
 * own namespace holding an address, a kubelet cgroup, a running process) is left alone.
 */
class PodDiscoveryE2eTest extends ClientServerMeshCase {
    static final String CLUSTER = "cn2dis";
    static final ObjectMapper JSON = new ObjectMapper();
    static final String STRAY_NETNS = "wisp-" + CLUSTER + "-stray";
    static final String STRAY_IP = "10.232.1.250";
    private final PodApps.Started started = new PodApps.Started();
    private final Path kubelet = Cgroups.wispRoot().resolve(CLUSTER).resolve("kubelet");

    PodDiscoveryE2eTest() {
        super(CLUSTER, 232, 9000, 9001);
    }

    @Override
    MeshSpec.Builder spec(MeshSpec.Builder spec) {
        return spec.agentArg("--discover-pods").agentArg("--cgroup-root=" + kubelet).agentArg(
                "--netns-dir=/var/run/netns");
    }

    @Test
    void aPodRunningBeforeTheAgentIsCapturedAndCallsWithItsIdentityAndAnUnlistedOneIsLeftAlone() throws Exception {
        Prerequisites.requireCommands("bpftool");
        assertACallIsCarriedOverHbone(9000, 5);
        LocalCluster.Pod pod = mesh.pod("client");
        Path podsDir = mesh.podsDir("node1");
        mesh.cluster().deletePodFile(pod, podsDir);
        await().atMost(Duration.ofSeconds(30)).until(() -> mesh.log("node1").contains(
                "removed pod client from capture"));

        // The pod as a kubelet runs it: its cgroup in the kubelet's layout, its app started there.
        Path podCgroup = Files.createDirectories(kubelet.resolve("kubepods/besteffort/podclient"));
        PodApps.Shell app = new PodApps.Shell(
                started.inCgroup(podCgroup, pod.netns(), PodApps.java(PodClient.class, "repl")),
                "client");
        // A pod the control plane does not list (out of the mesh): its own namespace, address, cgroup, process.
        Sh.run("ip", "netns", "add", STRAY_NETNS);
        Sh.run("ip", "-n", STRAY_NETNS, "link", "set", "lo", "up");
        Sh.run("ip", "-n", STRAY_NETNS, "addr", "add", STRAY_IP + "/32", "dev", "lo");
        Path strayCgroup = Files.createDirectories(kubelet.resolve("kubepods/besteffort/podstray"));
        started.inCgroup(strayCgroup, STRAY_NETNS, List.of("sleep", "600"));

        LocalMesh.AgentRestart restart = mesh.restartAgent("node1", false);
        assertThat(restart.log()).contains("found running pod client (cgroup " + podCgroup + ", netns ").contains(
                "enrolled pod client (cgroup " + podCgroup);
        JsonNode file = JSON.readTree(podsDir.resolve("client.json").toFile());
        assertThat(file.path("discovered").asBoolean()).isTrue();
        assertThat(Path.of(file.path("netns").asText()).getFileName().toString()).isEqualTo(pod.netns());
        assertThat(file.path("ips").toString()).isEqualTo("[\"" + pod.ip() + "\"]");

        // Its first call on a port never called before is captured and carries its identity.
        assertThat(app.call(server, 9001, 5)).isEqualTo("ok server 5");
        PodApps.assertCarriedOverHbone(mesh, "client", "server", 9001);

        // The unlisted pod: no file, nothing attached to its cgroup, never named by the agent.
        assertThat(podsDir.resolve("stray.json")).doesNotExist();
        assertThat(CaptureE2eTest.attachTypes(strayCgroup)).isEmpty();
        assertThat(CaptureE2eTest.attachTypes(podCgroup)).containsKeys("cgroup_inet4_connect", "cgroup_sock_ops");
        assertThat(mesh.log("node1")).doesNotContain("stray").doesNotContain(STRAY_IP);
    }

    @AfterAll
    void stopStarted() throws Exception {
        started.close();
        if (Sh.run("ip", "netns", "list").contains(STRAY_NETNS)) {
            Sh.run("ip", "netns", "delete", STRAY_NETNS);
        }
    }
}
