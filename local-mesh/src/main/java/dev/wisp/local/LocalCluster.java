package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Kubernetes-like cluster on one Linux machine: network namespaces play the underlay, the nodes
 * and the pods; a cgroup v2 holds each pod's (and each node's) processes.
 *
 * <pre>
 *   [root ns] --(optional host link)--+
 *                                      |
 *   wisp-C-ul:  bridge br0 (10.B.0.2) -+- n1 ... nN
 *                                            |
 *   wisp-C-node1: eth0 10.B.0.11, bridge cni0 10.(B+1).0.1/24 + fd00:(B+1):0::1/64, routes to other nodes' pod CIDRs
 *                                            |
 *   wisp-C-p-POD: eth0 10.(B+1).0.10/24 and fd00:(B+1):0::10/64, default via the node's cni0
 * </pre>
 *
 * In a dual-stack cluster ({@link ClusterSpec.Stack#DUAL}) the underlay, the nodes' {@code eth0} and
 * the host link also carry IPv6 ({@code fd00:B:0::/64}, node i at {@code fd00:B:0::(10+i)}), and the
 * nodes route each other's pod prefixes {@code fd00:(B+1):i::/64}; otherwise a pod's IPv6 address
 * reaches its own node only.
 *
 * Everything it creates is named after the cluster ({@code wisp-C-*} namespaces,
 * {@code <cgroup2>/wisp/C/}, {@code /sys/fs/bpf/wisp/C}, and the UAPI sockets of WireGuard devices
 * named by {@link #wireguardName}), so {@link #down(String)} removes a cluster by name even after
 * the process that built it crashed, and {@link Leftovers} finds what it left. Needs root.
 *
 * <p>On its own it is the test suite's one network-namespace builder, a "lab" without agents: tests
 * start what they need (agents as child JVMs with {@link #onNode}, servers in pods, WireGuard
 * devices, eBPF capture in this JVM) in its namespaces and cgroups. {@link LocalMesh} adds the
 * control plane and the node agents on top.
 *
 * <p>Thread safety: built and closed by one thread; {@link #startInPod}, {@link #startOnNode},
 * {@link #addPod}, {@link #removePod} and the pod accessors may be called from any thread (the
 * pods are guarded by this object's monitor).
 */
public final class LocalCluster implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(LocalCluster.class);
    private static final Path BPF_PINS = Path.of("/sys/fs/bpf/wisp");
    /** Where WireGuard devices (wireguard-go, {@code wisp wireguard}) keep their UAPI sockets. */
    static final Path UAPI_SOCKETS = Path.of("/var/run/wireguard");
    /** Names of the clusters this JVM built: what a test suite checks it left nothing of. */
    private static final Set<String> BUILT = ConcurrentHashMap.newKeySet();

    private final ClusterSpec spec;
    private final List<Node> nodes;
    // Guarded by `this`: the spec's pods, then those added by addPod (a local mesh's waypoints).
    private final Map<String, Pod> pods;
    // Guarded by `this`: the number of pods' host-side veths made so far (their names, p<n>).
    private int veths;
    // Guarded by `this`: set once by close().
    private boolean closed;

    /** A node: its namespace, underlay address, pod CIDR and cgroup (agents run there). */
    public record Node(int index, String name, String netns, String address, String podCidr, String podGateway,
            Path cgroup) {
        /** The pods' IPv6 gateway on {@code cni0} ({@link AddressPlan#ipv6Of} the IPv4 one). */
        public String podGateway6() {
            return v6Only() ? podGateway : AddressPlan.ipv6Of(podGateway);
        }

        /** The node's primary address family is IPv6 (an IPv6-only cluster). */
        private boolean v6Only() {
            return address.indexOf(':') >= 0;
        }

        /**
         * The node's IPv6 underlay address ({@link AddressPlan#ipv6Of} its IPv4 one), configured when the cluster's
         * {@link ClusterSpec#stack()} has IPv6.
         */
        public String address6() {
            return v6Only() ? address : AddressPlan.ipv6Of(address);
        }

        /** The IPv6 prefix of the node's pods, {@code fd00:X:Y::/64}. */
        public String podCidr6() {
            return podGateway6().replaceFirst("::1$", "::") + "/64";
        }
    }

    /** A pod: its declaration, namespace, address and cgroup. */
    public record Pod(ClusterSpec.PodSpec spec, Node node, String netns, String ip, Path cgroup) {
        public String name() {
            return spec.name();
        }

        /** The pod's IPv6 address ({@link AddressPlan#ipv6Of} its IPv4 one), in {@code fd00:X:Y::/64} of its node. */
        public String ip6() {
            return ip.indexOf(':') >= 0 ? ip : AddressPlan.ipv6Of(ip);
        }
    }

    private LocalCluster(ClusterSpec spec, List<Node> nodes, Map<String, Pod> pods) {
        this.spec = spec;
        this.nodes = nodes;
        this.pods = new LinkedHashMap<>(pods);
    }

    /**
     * Builds the cluster. Anything left by an earlier cluster of the same name is removed first;
     * on failure, whatever was built is removed again before the exception propagates.
     */
    public static LocalCluster up(ClusterSpec spec) {
        requireNonNull(spec, "spec");
        requireRoot();
        down(spec.name());
        BUILT.add(spec.name());
        String c = spec.name();
        AddressPlan plan = AddressPlan.of(spec);
        List<Node> nodes = new ArrayList<>();
        for (int i = 0; i < spec.nodes(); i++) {
            String name = "node" + (i + 1);
            nodes.add(new Node(i, name, "wisp-" + c + "-" + name, plan.node(i), plan.podCidr(i), plan.podGateway(i),
                    Cgroups.wispRoot().resolve(c).resolve("nodes").resolve(name)));
        }
        Map<String, Pod> pods = new LinkedHashMap<>();
        int[] next = new int[spec.nodes()];
        for (ClusterSpec.PodSpec p : spec.pods()) {
            Node n = nodes.get(p.node());
            pods.put(p.name(), new Pod(p, n, "wisp-" + c + "-p-" + p.name(), plan.pod(n.index(), 10 + next[n
                    .index()]++), Cgroups.wispRoot().resolve(c).resolve("pods").resolve(p.name())));
        }
        LocalCluster cluster = new LocalCluster(spec, List.copyOf(nodes), pods);
        try {
            cluster.build();
            return cluster;
        } catch (RuntimeException e) {
            try {
                down(c);
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    private void build() {
        try {
            // Agents pin below /sys/fs/bpf/wisp/C/<node>: with C there, another cluster's teardown cannot
            // remove the shared parent under them (PathCleanup.createDirectories).
            PathCleanup.createDirectories(BPF_PINS.resolve(spec.name()));
        } catch (IOException e) {
            log.debug("cluster {}: no BPF file system to pin in ({}); capture would say so", spec.name(), e
                    .toString());
        }
        String ul = underlayNetns();
        AddressPlan plan = AddressPlan.of(spec);
        Sh.run("ip", "netns", "add", ul);
        ns(ul, "ip", "link", "set", "lo", "up");
        ns(ul, "ip", "link", "add", "br0", "type", "bridge");
        boolean v4 = spec.stack().hasIpv4();
        boolean v6 = spec.stack().hasIpv6();
        if (v4) {
            ns(ul, "ip", "addr", "add", plan.underlay() + "/24", "dev", "br0");
        }
        ns(ul, "ip", "link", "set", "br0", "up");
        if (v6) {
            ns(ul, "ip", "addr", "add", underlayAddress6() + "/64", "dev", "br0", "nodad");
        }
        if (spec.hostLink()) {
            HostLink.add(spec, ul, nodes);
        }
        for (Node n : nodes) {
            Sh.run("ip", "netns", "add", n.netns());
            ns(n.netns(), "ip", "link", "set", "lo", "up");
            ns(n.netns(), "sysctl", "-qw", "net.ipv4.ip_forward=1");
            String uplink = "n" + (n.index() + 1);
            Sh.run("ip", "link", "add", uplink, "netns", ul, "type", "veth", "peer", "name", "eth0", "netns", n
                    .netns());
            ns(ul, "ip", "link", "set", uplink, "master", "br0", "up");
            if (v4) {
                ns(n.netns(), "ip", "addr", "add", n.address() + "/24", "dev", "eth0");
            }
            ns(n.netns(), "ip", "link", "set", "eth0", "up");
            ns(n.netns(), "ip", "link", "add", "cni0", "type", "bridge");
            if (v4) {
                ns(n.netns(), "ip", "addr", "add", n.podGateway() + "/24", "dev", "cni0");
            }
            ns(n.netns(), "ip", "link", "set", "cni0", "up");
            ns(n.netns(), "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1");
            ns(n.netns(), "ip", "addr", "add", n.podGateway6() + "/64", "dev", "cni0", "nodad");
            if (v6) {
                ns(n.netns(), "ip", "addr", "add", n.address6() + "/64", "dev", "eth0", "nodad");
            }
            if (spec.hostLink()) {
                if (v4) {
                    ns(n.netns(), "ip", "route", "add", "default", "via", plan.hostLink());
                }
                if (v6) {
                    ns(n.netns(), "ip", "-6", "route", "add", "default", "via", AddressPlan.ipv6Of(plan.hostLink()));
                }
            }
            for (Node other : nodes) {
                if (other != n) {
                    if (v4) {
                        ns(n.netns(), "ip", "route", "add", other.podCidr(), "via", other.address());
                    }
                    if (v6) {
                        ns(n.netns(), "ip", "-6", "route", "add", other.podCidr6(), "via", other.address6());
                    }
                }
            }
            // The way back from the underlay (the control plane) to a pod that calls it itself, as the
            // waypoint's pod does; node agents call it from their node's address.
            if (v4) {
                ns(ul, "ip", "route", "add", n.podCidr(), "via", n.address());
            }
            if (v6) {
                ns(ul, "ip", "-6", "route", "add", n.podCidr6(), "via", n.address6());
            }
            Cgroups.create(n.cgroup());
        }
        for (Pod p : pods.values()) {
            buildPod(p);
        }
        log.info("cluster {} up: {} nodes, {} pods", spec.name(), nodes.size(), pods.size());
    }

    /** A pod's namespace, its veth to the node's {@code cni0}, its addresses, default routes and cgroup. */
    private synchronized void buildPod(Pod p) {
        Sh.run("ip", "netns", "add", p.netns());
        ns(p.netns(), "ip", "link", "set", "lo", "up");
        String veth = "p" + (veths++);
        Sh.run("ip", "link", "add", veth, "netns", p.node().netns(), "type", "veth", "peer", "name", "eth0", "netns",
                p.netns());
        ns(p.node().netns(), "ip", "link", "set", veth, "master", "cni0", "up");
        if (spec.stack().hasIpv4()) {
            ns(p.netns(), "ip", "addr", "add", p.ip() + "/24", "dev", "eth0");
        }
        ns(p.netns(), "ip", "link", "set", "eth0", "up");
        if (spec.stack().hasIpv4()) {
            ns(p.netns(), "ip", "route", "add", "default", "via", p.node().podGateway());
        }
        ns(p.netns(), "ip", "addr", "add", p.ip6() + "/64", "dev", "eth0", "nodad");
        ns(p.netns(), "ip", "-6", "route", "add", "default", "via", p.node().podGateway6());
        Cgroups.create(p.cgroup());
    }

    /**
     * Adds a pod to the running cluster (as the spec's pods are built, with the lowest free address
     * of its node from {@code .10}), e.g. the pod a local mesh starts a waypoint in.
     *
     * @throws IllegalArgumentException when a pod of that name exists or the node is not the cluster's
     */
    public synchronized Pod addPod(ClusterSpec.PodSpec spec) {
        requireNonNull(spec, "spec");
        if (closed) {
            throw new IllegalStateException("cluster " + this.spec.name() + " is closed");
        }
        if (!ClusterSpec.POD.matcher(spec.name()).matches()) {
            throw new IllegalArgumentException("pod name '" + spec.name()
                    + "': use 1-16 lower-case letters, digits or '-', starting with a letter");
        }
        if (pods.containsKey(spec.name())) {
            throw new IllegalArgumentException("cluster " + this.spec.name() + " has a pod '" + spec.name() + "'");
        }
        if (spec.node() < 0 || spec.node() >= nodes.size()) {
            throw new IllegalArgumentException("pod " + spec.name() + ": no node index " + spec.node());
        }
        Node n = nodes.get(spec.node());
        Set<String> used = new java.util.HashSet<>();
        pods.values().forEach(p -> used.add(p.ip()));
        AddressPlan plan = AddressPlan.of(this.spec);
        int host = 10;
        while (used.contains(plan.pod(n.index(), host))) {
            host++;
        }
        if (host > 250) {
            throw new ClusterException("node " + n.name() + " has no free pod address left");
        }
        Pod p = new Pod(spec, n, "wisp-" + this.spec.name() + "-p-" + spec.name(), plan.pod(n.index(), host), Cgroups
                .wispRoot().resolve(this.spec.name()).resolve("pods").resolve(spec.name()));
        pods.put(spec.name(), p);
        try {
            buildPod(p);
        } catch (RuntimeException e) {
            removePod(spec.name());
            throw e;
        }
        log.info("cluster {}: pod {} added on {} ({})", this.spec.name(), p.name(), n.name(), p.ip());
        return p;
    }

    /** Removes pod {@code name} added by {@link #addPod}: kills its processes, deletes its namespace and cgroup. */
    public synchronized void removePod(String name) {
        Pod p = pods.remove(requireNonNull(name, "name"));
        if (p == null) {
            return;
        }
        Cgroups.destroy(p.cgroup());
        unlessGone(p.netns(), () -> killNamespaceProcesses(p.netns()));
        unlessGone(p.netns(), () -> Sh.run("ip", "netns", "del", p.netns()));
        log.info("cluster {}: pod {} removed", spec.name(), name);
    }

    public ClusterSpec spec() {
        return spec;
    }

    public List<Node> nodes() {
        return nodes;
    }

    public Node node(int index) {
        return nodes.get(index);
    }

    public synchronized List<Pod> pods() {
        return List.copyOf(pods.values());
    }

    public synchronized Pod pod(String name) {
        Pod p = pods.get(requireNonNull(name, "name"));
        if (p == null) {
            throw new IllegalArgumentException("no pod '" + name + "' in cluster " + spec.name() + " (pods: "
                    + pods.keySet() + ")");
        }
        return p;
    }

    /** The cluster's address plan. */
    public AddressPlan plan() {
        return AddressPlan.of(spec);
    }

    /** The underlay namespace (the bridge between nodes; the control plane runs here). */
    public String underlayNetns() {
        return "wisp-" + spec.name() + "-ul";
    }

    /** The underlay bridge's address: where a control plane in {@link #underlayNetns()} listens. */
    public String underlayAddress() {
        return AddressPlan.of(spec).underlay();
    }

    /** The underlay bridge's IPv6 address, configured when the cluster's stack has IPv6. */
    public String underlayAddress6() {
        return AddressPlan.ipv6Of("10." + spec.base() + ".0.2");
    }

    /** {@code pod}'s addresses as its node's agent and the control plane are told: IPv4, then IPv6 in a dual-stack cluster. */
    public List<String> ips(Pod pod) {
        return AddressPlan.of(spec).listed(pod.ip());
    }

    /** A command that runs {@code command} in {@code pod}'s namespace and cgroup. */
    public ProcessBuilder inPod(Pod pod, List<String> command) {
        return inNamespace(pod.netns(), pod.cgroup(), command);
    }

    /** A command that runs {@code command} in {@code node}'s namespace and cgroup. */
    public ProcessBuilder onNode(Node node, List<String> command) {
        return inNamespace(node.netns(), node.cgroup(), command);
    }

    /**
     * A command for a node agent: in {@code node}'s cgroup and network namespace like
     * {@link #onNode}, but entered with {@code nsenter --net} instead of {@code ip netns exec}, which
     * remounts {@code /sys} in a private mount namespace and so hides the host's {@code /sys/fs/bpf}
     * (an agent's pinned eBPF state must outlive it) and cgroup2 mounts.
     */
    public ProcessBuilder agentOnNode(Node node, List<String> command) {
        requireNonNull(node, "node");
        requireNonNull(command, "command");
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "echo $$ > \"$0\" && exec \"$@\"",
                node.cgroup().resolve("cgroup.procs").toString(), "nsenter", "--net=/var/run/netns/" + node.netns()));
        argv.addAll(command);
        return new ProcessBuilder(argv);
    }

    /** A command that runs in the underlay namespace, in the cluster's control-plane cgroup. */
    public ProcessBuilder onUnderlay(List<String> command) {
        Path cg = Cgroups.create(Cgroups.wispRoot().resolve(spec.name()).resolve("control-plane"));
        return inNamespace(underlayNetns(), cg, command);
    }

    public Process startInPod(Pod pod, List<String> command) throws IOException {
        return inPod(pod, command).start();
    }

    public Process startOnNode(Node node, List<String> command) throws IOException {
        return onNode(node, command).start();
    }

    private static ProcessBuilder inNamespace(String netns, Path cgroup, List<String> command) {
        requireNonNull(command, "command");
        if (command.isEmpty()) {
            throw new IllegalArgumentException("empty command");
        }
        // Join the cgroup before entering the namespace: `ip netns exec` remounts /sys, which can
        // hide the cgroup2 mount on hybrid hierarchies. The cgroup is inherited across exec.
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "echo $$ > \"$0\" && exec \"$@\"",
                cgroup.resolve("cgroup.procs").toString(), "ip", "netns", "exec", netns));
        argv.addAll(command);
        return new ProcessBuilder(argv);
    }

    /** Runs {@code command} in {@code pod} to completion (30 s at most) and returns its stdout. */
    public String execInPod(Pod pod, String... command) {
        return Sh.run(inPod(pod, List.of(command)).command());
    }

    /**
     * Tells a node agent about {@code pod} the way istio-cni tells ztunnel: writes
     * {@code <podsDir>/<name>.json} ({@code uid} = the pod's name, its cgroup directory, its netns
     * path and IPs) atomically (temp file + rename), so the agent never reads half a file.
     */
    public Path writePodFile(Pod pod, Path podsDir) {
        requireNonNull(pod, "pod");
        requireNonNull(podsDir, "podsDir");
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("uid", pod.name());
        body.put("cgroup", pod.cgroup().toString());
        body.put("netns", "/var/run/netns/" + pod.netns());
        body.put("ips", ips(pod));
        Path file = podsDir.resolve(pod.name() + ".json");
        Path tmp = podsDir.resolve("." + pod.name() + ".json.tmp");
        try {
            Files.write(tmp, new ObjectMapper().writeValueAsBytes(body));
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new ClusterException("cannot write the pod file " + file + ": " + e.getMessage(), e);
        }
        return file;
    }

    /** Removes {@code pod}'s file from an agent's pods directory: the agent stops capturing it. */
    public void deletePodFile(Pod pod, Path podsDir) {
        Path file = requireNonNull(podsDir, "podsDir").resolve(requireNonNull(pod, "pod").name() + ".json");
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new ClusterException("cannot delete the pod file " + file + ": " + e.getMessage(), e);
        }
    }

    /** Tears the cluster down: processes, namespaces, links, cgroups, pinned BPF objects. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            down(spec.name());
            log.info("cluster {} down", spec.name());
        }
    }

    /**
     * Removes everything of cluster {@code name}, whether or not it is running and whoever built it.
     * Idempotent.
     */
    public static void down(String name) {
        requireNonNull(name, "name");
        requireRoot();
        String prefix = "wisp-" + name + "-";
        List<RuntimeException> failures = new ArrayList<>();
        Path cg = Cgroups.wispRoot().resolve(name);
        run(failures, () -> Cgroups.destroy(cg));
        run(failures, () -> CpuShares.remove(name));
        HostLink.remove(name, failures);
        for (String netns : netnsNames()) {
            if (netns.startsWith(prefix)) {
                // Another teardown (a pod stopped by its owner while a signal tears the cluster down)
                // may remove the namespace between the listing and these steps: gone is what they want.
                run(failures, () -> unlessGone(netns, () -> killNamespaceProcesses(netns)));
                run(failures, () -> unlessGone(netns, () -> Sh.run("ip", "netns", "del", netns)));
            }
        }
        run(failures, () -> PathCleanup.deleteTree(BPF_PINS.resolve(name)));
        // A WireGuard device named after the cluster died with its namespace's processes; its socket stays.
        run(failures, () -> PathCleanup.uapiSockets(name).forEach(PathCleanup::delete));
        PathCleanup.removeIfEmpty(Cgroups.wispRoot());
        PathCleanup.removeIfEmpty(BPF_PINS);
        if (!failures.isEmpty()) {
            ClusterException e = new ClusterException("tearing down cluster " + name + " left something behind: "
                    + failures.getFirst().getMessage());
            failures.forEach(e::addSuppressed);
            throw e;
        }
    }

    /** The names of every cluster {@link #up} built in this JVM (whether or not it is down now). */
    public static Set<String> builtInThisJvm() {
        return Set.copyOf(BUILT);
    }

    /**
     * The name for a WireGuard interface {@code suffix} of this cluster ({@code wisp-C-suffix}, at
     * most 15 characters): its UAPI socket is then found and removed with the cluster.
     */
    public String wireguardName(String suffix) {
        String name = "wisp-" + spec.name() + "-" + requireNonNull(suffix, "suffix");
        if (name.length() > 15) {
            throw new IllegalArgumentException("interface name " + name + " is longer than 15 characters");
        }
        return name;
    }

    static List<String> netnsNames() {
        List<String> names = new ArrayList<>();
        for (String line : Sh.run("ip", "netns", "list").split("\n")) {
            if (!line.isBlank()) {
                names.add(line.strip().split("\\s+")[0]);
            }
        }
        return names;
    }

    private static void killNamespaceProcesses(String netns) {
        for (String pid : Sh.run("ip", "netns", "pids", netns).split("\\s+")) {
            if (!pid.isBlank()) {
                ProcessHandle.of(Long.parseLong(pid)).ifPresent(h -> {
                    h.destroyForcibly();
                    h.onExit().completeOnTimeout(h, 2, java.util.concurrent.TimeUnit.SECONDS).join();
                });
            }
        }
    }

    /** Runs {@code step} on {@code netns}; its failure counts only while the namespace still exists. */
    static void unlessGone(String netns, Runnable step) {
        try {
            step.run();
        } catch (RuntimeException e) {
            if (Files.exists(Path.of("/var/run/netns", netns))) {
                throw e;
            }
            log.debug("namespace {} was removed by another teardown meanwhile", netns);
        }
    }

    private static void run(List<RuntimeException> failures, Runnable step) {
        try {
            step.run();
        } catch (RuntimeException e) {
            failures.add(e);
        }
    }

    private static String ns(String netns, String... command) {
        List<String> argv = new ArrayList<>(List.of("ip", "netns", "exec", netns));
        argv.addAll(List.of(command));
        return Sh.run(argv);
    }

    static void requireRoot() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:") && !line.substring(4).trim().split("\\s+")[1].equals("0")) {
                    throw new ClusterException(
                            "a local cluster needs root (network namespaces, cgroups, eBPF): run it as root");
                }
            }
        } catch (IOException e) {
            throw new ClusterException("cannot read /proc/self/status", e);
        }
    }
}
