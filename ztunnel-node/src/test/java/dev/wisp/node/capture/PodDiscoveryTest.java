package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.bpf.capture.PodRef;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Finding running pods that no pod file names, on a host laid out in temporary directories (the
 * kubelet's cgroups, the runtime's namespace files); which addresses a namespace holds is played by
 * the test ({@code CniEnrollmentE2eTest} enters real namespaces).
 */
class PodDiscoveryTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String UID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
    static final InetAddress IP = InetAddress.ofLiteral("10.244.1.7");
    static final InetAddress IP6 = InetAddress.ofLiteral("fd00:10:244:1::7");

    @TempDir
    Path dir;
    Path pods;
    Path cgroups;
    Path netnsDir;
    /** Namespace file → the addresses it holds. */
    final Map<Path, Set<InetAddress>> held = new HashMap<>();
    PodDiscovery discovery;

    @BeforeEach
    void host() throws Exception {
        CniHost host = CniHost.in(dir);
        pods = host.pods();
        cgroups = host.cgroupRoot();
        netnsDir = host.netnsDir();
        discovery = new PodDiscovery(new PodDiscovery.Settings(pods, cgroups, List.of(netnsDir)), (netns, ips) -> {
            Set<InetAddress> out = new HashSet<>(held.getOrDefault(netns, Set.of()));
            out.retainAll(ips);
            return out;
        });
    }

    /** A BestEffort pod's cgroup as the systemd driver names it. */
    Path systemdCgroup(String uid) throws Exception {
        return Files.createDirectories(cgroups.resolve("kubepods.slice/kubepods-besteffort.slice/"
                + "kubepods-besteffort-pod" + uid.replace('-', '_') + ".slice"));
    }

    Path netns(String name, InetAddress... ips) throws Exception {
        Path f = Files.writeString(netnsDir.resolve(name), "");
        held.put(f, Set.of(ips));
        return f;
    }

    static PodDiscovery.Candidate pod(String uid, InetAddress... ips) {
        return new PodDiscovery.Candidate(uid, List.of(ips));
    }

    @Test
    void aListedPodWithoutAFileIsFoundByItsCgroupAndTheNamespaceHoldingItsAddresses() throws Exception {
        Path cgroup = systemdCgroup(UID);
        netns("cni-other", InetAddress.ofLiteral("10.244.1.8"));
        Path ns = netns("cni-1234", IP, IP6);
        assertThat(discovery.discover(List.of(pod(UID, IP, IP6)))).containsExactly(UID);
        Path file = pods.resolve(UID + ".json");
        assertThat(PodFile.read(file)).isEqualTo(new PodRef(UID, cgroup, ns, List.of(IP, IP6)));
        assertThat(JSON.readTree(file.toFile()).path("discovered").asBoolean()).isTrue();

        // Found once per run: its file deleted (the plugin's DEL), it is not brought back.
        Files.delete(file);
        assertThat(discovery.discover(List.of(pod(UID, IP, IP6)))).isEmpty();
        assertThat(file).doesNotExist();
    }

    @Test
    void aPodAnnouncedByThePluginIsLeftToIt() throws Exception {
        systemdCgroup(UID);
        netns("cni-1234", IP);
        Files.writeString(pods.resolve(UID + ".json"), "{\"from\": \"the plugin\"}");
        assertThat(discovery.discover(List.of(pod(UID, IP)))).isEmpty();
        assertThat(Files.readString(pods.resolve(UID + ".json"))).isEqualTo("{\"from\": \"the plugin\"}");
        Files.delete(pods.resolve(UID + ".json"));
        assertThat(discovery.discover(List.of(pod(UID, IP)))).isEmpty();
    }

    /** The list says what to look for, the host where: anything that does not add up is not enrolled. */
    @Test
    void claimsThatDoNotAddUpEnrollNothing() throws Exception {
        // No namespace holds the address the control plane lists.
        systemdCgroup(UID);
        netns("cni-1234", InetAddress.ofLiteral("10.244.1.9"));
        assertThat(discovery.discover(List.of(pod(UID, IP)))).isEmpty();
        // A namespace holding only one of its two addresses is not the pod's.
        netns("cni-half", IP);
        assertThat(discovery.discover(List.of(pod(UID, IP, IP6)))).isEmpty();
        // Two namespaces hold it (one claims another pod's address): neither is trusted.
        netns("cni-1234", IP);
        assertThat(discovery.discover(List.of(pod(UID, IP)))).isEmpty();
        // No cgroup for that uid in the kubelet's layout; a uid that is no pod's (a path, a name).
        String other = "9a8b7c6d-0000-1111-2222-333344445555";
        netns("cni-other", InetAddress.ofLiteral("10.244.1.10"));
        assertThat(discovery.discover(List.of(pod(other, InetAddress.ofLiteral("10.244.1.10")), pod(
                "Kubernetes//Pod/shop/web-0", IP), pod("../../etc", IP)))).isEmpty();
        assertThat(pods.toFile().list()).isEmpty();

        // Once the host adds up (the impostor gone), the next pass enrolls it.
        Files.delete(netnsDir.resolve("cni-half"));
        held.put(netnsDir.resolve("cni-1234"), Set.of(IP));
        assertThat(discovery.discover(List.of(pod(UID, IP)))).containsExactly(UID);
        assertThat(PodFile.read(pods.resolve(UID + ".json")).netns()).isEqualTo(netnsDir.resolve("cni-1234"));
    }

    @Test
    void aNamespaceDirectoryNamedTwiceThroughALinkIsOneNamespace() throws Exception {
        Path cgroup = Files.createDirectories(cgroups.resolve("kubepods/burstable/pod" + UID));
        Path alias = Files.createSymbolicLink(dir.resolve("var-run-netns"), netnsDir);
        Path ns = netns("cni-1234", IP);
        PodDiscovery twice = new PodDiscovery(new PodDiscovery.Settings(pods, cgroups, List.of(alias, netnsDir)),
                (netns, ips) -> netns.equals(ns) ? Set.of(IP) : Set.of());
        assertThat(twice.discover(List.of(pod(UID, IP)))).containsExactly(UID);
        assertThat(PodFile.read(pods.resolve(UID + ".json"))).isEqualTo(new PodRef(UID, cgroup, ns, List.of(IP)));
    }

    @Test
    void aPodTheControlPlaneDoesNotListIsNeverLookedFor() throws Exception {
        systemdCgroup(UID);
        netns("cni-1234", IP);
        assertThat(discovery.discover(List.of())).isEmpty();
        assertThat(pods.toFile().list()).isEmpty();
    }

    @Test
    void theRealCheckBindsOnlyAddressesOfTheNamespace() throws Exception {
        dev.wisp.testing.Prerequisites.requireRoot();
        Path self = Path.of("/proc/self/ns/net");
        assertThat(PodDiscovery.bindable(self, List.of(InetAddress.getLoopbackAddress(), InetAddress.ofLiteral(
                "192.0.2.77")))).containsExactly(InetAddress.getLoopbackAddress());
    }
}
