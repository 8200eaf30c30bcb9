package dev.wisp.e2e;

import dev.wisp.bpf.capture.PodRef;
import dev.wisp.linux.Cgroups;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.Sh;
import dev.wisp.testing.Netns;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * Where this JVM plays a node agent that opens eBPF capture: a {@link LocalCluster} without agents,
 * one node with pods {@code a}, {@code b}, {@code c} (indexes 0, 1, 2) on its bridge, and this JVM
 * moved into the node's cgroup, the capture's agent cgroup, so that the agent's hook never
 * attaches to the machine's root cgroup. {@link #close} moves the JVM back before the cluster
 * (and whatever is in its cgroups) is removed.
 */
final class CaptureLab implements AutoCloseable {
    final LocalCluster cluster;
    final Path agentCgroup;
    private final List<LocalCluster.Pod> pods;
    private final String originalCgroup;

    private CaptureLab(LocalCluster cluster) throws IOException {
        this.cluster = cluster;
        pods = List.of(cluster.pod("a"), cluster.pod("b"), cluster.pod("c"));
        agentCgroup = cluster.node(0).cgroup();
        originalCgroup = Cgroups.relativePathOfCurrentProcess();
        Files.writeString(agentCgroup.resolve("cgroup.procs"), Long.toString(ProcessHandle.current().pid()));
    }

    /** Builds cluster {@code name} on address plan {@code base} and moves this JVM into its node's cgroup. */
    static CaptureLab up(String name, int base) throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "bpftool");
        LocalCluster cluster = LocalCluster.up(ClusterSpec.builder(name).nodes(1).base(base).pod("a", "default",
                "a", 0).pod("b", "default", "b", 0).pod("c", "default", "c", 0).build());
        try {
            return new CaptureLab(cluster);
        } catch (IOException | RuntimeException e) {
            cluster.close();
            throw e;
        }
    }

    /** Where capture pins its objects for {@code use}: below the cluster's pins, removed with it. */
    Path pinRoot(String use) {
        return Path.of("/sys/fs/bpf/wisp", cluster.spec().name(), use);
    }

    String nodeNetns() {
        return cluster.node(0).netns();
    }

    /** Pod {@code i}'s network namespace name (also its id for capture). */
    String netns(int i) {
        return pods.get(i).netns();
    }

    Path netnsPath(int i) {
        return Path.of("/run/netns", netns(i));
    }

    Path cgroup(int i) {
        return pods.get(i).cgroup();
    }

    long cgroupId(int i) throws IOException {
        return Cgroups.id(cgroup(i));
    }

    String podIp(int i) {
        return pods.get(i).ip();
    }

    String podIp6(int i) {
        return pods.get(i).ip6();
    }

    InetAddress podAddress(int i) {
        return InetAddress.ofLiteral(podIp(i));
    }

    InetAddress podAddress6(int i) {
        return InetAddress.ofLiteral(podIp6(i));
    }

    /** The node's side of every pod's link (its bridge): where the agent listens and connects from. */
    String nodeIp() {
        return cluster.node(0).podGateway();
    }

    InetAddress nodeAddress() {
        return InetAddress.ofLiteral(nodeIp());
    }

    InetAddress nodeAddress6() {
        return InetAddress.ofLiteral(cluster.node(0).podGateway6());
    }

    /** Pod {@code i} as capture enrolls it (with its namespace when {@code withNetns}: inbound steering). */
    PodRef podRef(int i, boolean withNetns) {
        return new PodRef(netns(i), cgroup(i), withNetns ? netnsPath(i) : null, List.of(podAddress(i)));
    }

    /** Runs {@code command} inside pod {@code i} (its cgroup and network namespace) to completion. */
    Sh.Result inPod(int i, List<String> command, long timeoutSeconds) {
        return Sh.tryRun(Duration.ofSeconds(timeoutSeconds), cluster.inPod(pods.get(i), command).command());
    }

    /** Calls {@code body} on a new platform thread that has entered namespace {@code netns}. */
    static <T> T in(String netns, Callable<T> body) throws Exception {
        return Netns.call(netns, body, Duration.ofMinutes(5));
    }

    @Override
    public void close() throws Exception {
        try {
            Files.writeString(Cgroups.v2Root().resolve(originalCgroup.substring(1)).resolve("cgroup.procs"), Long
                    .toString(ProcessHandle.current().pid()));
        } finally {
            PodApps.down(cluster, cluster.spec().name());
        }
    }
}
