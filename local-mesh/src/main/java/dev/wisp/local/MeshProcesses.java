package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * The child processes of one local mesh: the control plane in the underlay namespace, one agent per
 * node, the pods' processes and Prometheus. It builds their command lines, starts them (logs
 * appended to {@code <workDir>/<process>.log}), waits until each is ready by what its log says since
 * it started, restarts them, and at the end stops and reaps them all.
 *
 * <p>Thread safety: process management is serialized on this object's monitor, which guards every
 * mutable field.
 */
final class MeshProcesses {
    static final String CONTROL_PLANE = "control-plane";
    /**
     * The ports the processes are given besides {@link LocalMesh#XDS_PORT}: the control plane's admin
     * on the underlay's loopback, each agent's admin on its node's loopback and its metrics on the
     * node address (reachable from the host through the host link).
     */
    static final int CONTROL_PLANE_ADMIN_PORT = 15014, AGENT_ADMIN_PORT = 15000, AGENT_METRICS_PORT = 15020;
    /** How long the control plane and each agent may take to be ready. */
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(120);
    private static final Pattern CONFIGURATION_LIVE = Pattern.compile("configuration generation \\d+ live");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final MeshSpec spec;
    private final LocalCluster cluster;
    private final Path stateDir;
    /** The node agent's JVM options and environment: {@code bin/node-jvm.options}, as production runs them. */
    static final NodeJvmOptions AGENT_JVM = NodeJvmOptions.load();
    /**
     * {@link MeshSpec#wispCommand()} with {@link #AGENT_JVM}'s options, and an AOT class cache when one
     * can be had ({@link AgentAotCache}).
     */
    private final List<String> agentCommand;
    // Guarded by `this`.
    private Process controlPlane;
    private final Map<String, Process> agents = new LinkedHashMap<>();
    private final List<Process> podProcesses = new ArrayList<>();
    private final List<Prometheus> prometheuses = new ArrayList<>();
    private int podProcessCount;
    private boolean closed;

    MeshProcesses(MeshSpec spec, LocalCluster cluster, Path stateDir, List<String> agentCommand) {
        this.spec = spec;
        this.cluster = cluster;
        this.stateDir = stateDir;
        this.agentCommand = agentCommand;
    }

    /** The control plane's admin: on the underlay namespace's loopback, {@code [::1]} in an IPv6-only cluster. */
    InetSocketAddress controlPlaneAdmin() {
        return new InetSocketAddress(cluster.plan().loopback(), CONTROL_PLANE_ADMIN_PORT);
    }

    /** The log of {@code process}: {@code control-plane} or a node name (not checked here). */
    ProcessLog log(String process) {
        return new ProcessLog(spec.workDir().resolve(process + ".log"));
    }

    Path podsDir(LocalCluster.Node n) {
        return spec.workDir().resolve("pods").resolve(n.name());
    }

    /** Where {@code n}'s agent serves its pods' Workload API sockets. */
    Path workloadApiDir(LocalCluster.Node n) {
        return spec.workDir().resolve("wapi").resolve(n.name());
    }

    // ---- the control plane

    synchronized Optional<Process> controlPlane() {
        return Optional.ofNullable(controlPlane).filter(Process::isAlive);
    }

    synchronized void killControlPlane() {
        if (controlPlane != null) {
            stop(controlPlane, true);
            controlPlane = null;
        }
    }

    /** Starts the control plane unless it runs; returns once its gRPC port is bound and a configuration is live. */
    synchronized void startControlPlane() {
        if (controlPlane != null && controlPlane.isAlive()) {
            return;
        }
        ProcessLog log = log(CONTROL_PLANE);
        long offset = log.size();
        List<String> cmd = new ArrayList<>(spec.wispCommand());
        cmd.addAll(List.of("control-plane", "--config-dir", spec.configDir().toString(), "--state-dir", stateDir
                .toString(), "--listen", AddressPlan.hostPort(cluster.underlayAddress(), LocalMesh.XDS_PORT), "--admin",
                AddressPlan.hostPort(cluster.plan().loopback(), CONTROL_PLANE_ADMIN_PORT)));
        cmd.addAll(spec.controlPlaneArgs());
        try {
            controlPlane = cluster.onUnderlay(cmd).redirectErrorStream(true).redirectOutput(log.appendTo()).start();
        } catch (IOException e) {
            throw new ClusterException("cannot start the control plane (" + cmd.getFirst() + "): " + e.getMessage(),
                    e);
        }
        log.awaitReady("the control plane", controlPlane, offset, READY_TIMEOUT, text -> text.contains(
                "control plane: agents on") && CONFIGURATION_LIVE.matcher(text).find());
    }

    // ---- agents

    synchronized Optional<Process> agent(LocalCluster.Node n) {
        return Optional.ofNullable(agents.get(n.name())).filter(Process::isAlive);
    }

    /** Starts {@code n}'s agent; returns the offset of its log where this run's lines start. */
    synchronized long startAgent(LocalCluster.Node n) {
        return startAgent(n, spec.agentCapabilities());
    }

    /**
     * Starts {@code n}'s agent with exactly {@code capabilities} as its bounding set (null: root's
     * full set); returns the offset of its log where this run's lines start.
     */
    /**
     * The options that link a process on node {@code n} to this mesh's control plane, as {@code wisp node}
     * and {@code wisp waypoint} both take them: its address, the node's credential and the CA bundle,
     * from the control plane's state directory.
     */
    List<String> controlPlaneLink(LocalCluster.Node n) {
        return List.of("--control-plane", AddressPlan.hostPort(cluster.underlayAddress(), LocalMesh.XDS_PORT),
                "--token-file",
                stateDir.resolve("node-credentials").resolve(n.name() + ".token").toString(), "--ca-bundle",
                stateDir.resolve("ca").resolve("bundle.pem").toString());
    }

    synchronized long startAgent(LocalCluster.Node n, List<String> capabilities) {
        return startAgent(n, capabilities, List.of());
    }

    /** As {@link #startAgent(LocalCluster.Node, List)}, with {@code more} arguments after the spec's. */
    private long startAgent(LocalCluster.Node n, List<String> capabilities, List<String> more) {
        ProcessLog log = log(n.name());
        long offset = log.size();
        List<String> cmd = new ArrayList<>();
        if (capabilities != null) {
            cmd.addAll(boundingSet(capabilities));
        }
        cmd.addAll(agentCommand);
        cmd.addAll(List.of("node", "--node", n.name()));
        cmd.addAll(controlPlaneLink(n));
        if (!spec.agentArgs().contains("--drain-timeout")) {
            cmd.addAll(List.of("--drain-timeout", "PT1S"));
        }
        if (!spec.agentArgs().contains("--workers")) {
            cmd.addAll(List.of("--workers", "1")); // one I/O loop per agent unless the spec says otherwise
        }
        cmd.addAll(List.of("--capture", "--pods-dir",
                podsDir(n).toString(), "--workload-api-dir",
                workloadApiDir(n).toString(), "--capture-address",
                n.address(), "--bpf-pin-root", "/sys/fs/bpf/wisp/" + spec.cluster().name() + "/" + n.name()));
        if (spec.cluster().stack().hasIpv6()) {
            // Dual-stack listeners: HBONE reaches the node's IPv6 address too, and capture steers the
            // pods' IPv6 connects to the outbound listener on it.
            cmd.addAll(List.of("--bind", "::"));
        }
        if (spec.wireguard()) {
            cmd.addAll(wireguardArgs(n));
        }
        cmd.addAll(spec.agentArgs());
        cmd.addAll(more);
        ProcessBuilder agent = cluster.agentOnNode(n, cmd);
        if (spec.cpuShares() != null) {
            agent.command(spec.cpuShares().joining(spec.cluster().name(), n.name(), true, agent.command()));
        }
        AGENT_JVM.applyTo(agent.environment());
        try {
            agents.put(n.name(), agent.redirectErrorStream(true).redirectOutput(log.appendTo()).start());
        } catch (IOException e) {
            throw new ClusterException("cannot start the agent of " + n.name() + ": " + e.getMessage(), e);
        }
        return offset;
    }

    /**
     * The prefix that runs a command as root with only {@code capabilities} (no inheritable or ambient
     * ones): what a container that drops ALL and adds them gives its root process, since root's
     * permitted and effective sets after {@code execve} are its bounding set. It comes after
     * {@code nsenter}, which needs CAP_SYS_ADMIN itself.
     */
    static List<String> boundingSet(List<String> capabilities) {
        StringBuilder set = new StringBuilder("-all");
        for (String c : capabilities) {
            if (!c.matches("[A-Z][A-Z_]*")) {
                throw new IllegalArgumentException("not a capability name: '" + c + "' (e.g. NET_ADMIN)");
            }
            set.append(",+").append(c.toLowerCase(Locale.ROOT));
        }
        return List.of("setpriv", "--bounding-set", set.toString(), "--inh-caps", "-all", "--ambient-caps", "-all",
                "--");
    }

    /**
     * The agent's WireGuard options: its device {@code wisp-C-<n>} (UAPI socket under the cluster's
     * name, removed with it), endpoint on the node address, its pod CIDRs published (both families in
     * a dual-stack cluster; none when they come from the Node resources), the cluster's pods' /16
     * and/or its IPv6 twin {@code fd00:<base+1>::/32} unreachable except through the device (strict),
     * the key in the work directory.
     */
    private List<String> wireguardArgs(LocalCluster.Node n) {
        List<String> args = new ArrayList<>(List.of("--wireguard", "--wireguard-interface", wireguardInterface(
                cluster, n), "--wireguard-address", n.address()));
        if (!spec.wireguardPodCidrsFromNodes()) {
            args.addAll(List.of("--wireguard-pod-cidr", n.podCidr()));
            if (spec.cluster().stack() == ClusterSpec.Stack.DUAL) {
                args.addAll(List.of("--wireguard-pod-cidr", n.podCidr6()));
            }
        }
        cluster.plan().podsCidrs().forEach(c -> args.addAll(List.of("--wireguard-cluster-cidr", c)));
        args.addAll(List.of("--wireguard-state-dir", spec.workDir().resolve("wireguard").resolve(n.name())
                .toString()));
        return args;
    }

    /**
     * The name of {@code n}'s WireGuard interface in a local mesh: {@code wisp-C-<node number>}, the
     * number in base 36 when the decimal one would pass the 15 characters of an interface name.
     */
    static String wireguardInterface(LocalCluster cluster, LocalCluster.Node n) {
        String decimal = String.valueOf(n.index() + 1);
        boolean fits = ("wisp-" + cluster.spec().name() + "-" + decimal).length() <= 15;
        return cluster.wireguardName(fits ? decimal : Integer.toString(n.index() + 1, 36));
    }

    /**
     * Waits until {@code n}'s agent says (after {@code offset}) it is ready and has enrolled each of
     * its pods, and its {@code /config_dump} holds every pod's workload.
     */
    void awaitAgentReady(LocalCluster.Node n, long offset) {
        Process p;
        synchronized (this) {
            p = agents.get(n.name());
        }
        List<String> podNames = cluster.pods().stream().filter(pod -> pod.node().equals(n) && pod.spec().captured())
                .map(
                        LocalCluster.Pod::name)
                .toList();
        int allPods = cluster.pods().size();
        log(n.name()).awaitReady("the agent of " + n.name(), p, offset, READY_TIMEOUT, text -> {
            if (!text.contains("node agent for " + n.name() + " ready")) {
                return false;
            }
            for (String pod : podNames) {
                if (!text.contains("enrolled pod " + pod + " (")) {
                    return false;
                }
            }
            try {
                String dump = InNetns.httpGet(n.netns(), AGENT_ADMIN_PORT, "/config_dump");
                return JSON.readTree(dump).path("workloads").size() >= allPods;
            } catch (IOException e) {
                return false;
            }
        });
    }

    /** See {@link LocalMesh#startAgentWithCapabilities}. */
    synchronized long replaceAgent(LocalCluster.Node n, List<String> capabilities) {
        Process old = agents.remove(n.name());
        if (old != null) {
            stop(old, false);
        }
        return startAgent(n, requireNonNull(capabilities, "capabilities"));
    }

    /** See {@link LocalMesh#restartAgent}. */
    synchronized LocalMesh.AgentRestart restartAgent(LocalCluster.Node n, boolean kill) {
        ProcessLog log = log(n.name());
        long logOffset = log.size();
        long stopping = System.currentTimeMillis();
        Process old = agents.remove(n.name());
        if (old != null) {
            stop(old, kill);
        }
        long exited = System.currentTimeMillis();
        long offset = startAgent(n);
        long started = System.currentTimeMillis();
        awaitAgentReady(n, offset);
        return new LocalMesh.AgentRestart(stopping, exited, started, System.currentTimeMillis(), log.since(logOffset));
    }

    /** See {@link LocalMesh#takeOverAgent}. */
    synchronized LocalMesh.AgentTakeover takeOverAgent(LocalCluster.Node n) {
        Process old = agents.remove(n.name());
        if (old == null || !old.isAlive()) {
            throw new ClusterException("the agent of " + n.name() + " is not running: nothing to take over");
        }
        long started = System.currentTimeMillis();
        long offset = startAgent(n, spec.agentCapabilities(), List.of("--takeover"));
        awaitAgentReady(n, offset);
        return new LocalMesh.AgentTakeover(old, offset, started, System.currentTimeMillis());
    }

    // ---- pods' processes and Prometheus

    /** Starts {@code command} in {@code pod}, stdout and stderr merged, to {@code logFile} or (null) to the process. */
    Process startInPod(LocalCluster.Pod pod, List<String> command, Path logFile) throws IOException {
        ProcessBuilder b = cluster.inPod(pod, command).redirectErrorStream(true);
        if (spec.cpuShares() != null) {
            b.command(spec.cpuShares().joining(spec.cluster().name(), pod.name(), false, b.command()));
        }
        if (logFile != null) {
            b.redirectOutput(new ProcessLog(logFile).appendTo());
        }
        Process p = b.start();
        return adopt(p, podProcesses, p::destroyForcibly);
    }

    /** Stops {@code p}, started by {@link #startInPod}, before the mesh ends (SIGTERM, SIGKILL after 15 s). */
    void stopPodProcess(Process p) {
        synchronized (this) {
            podProcesses.remove(p);
        }
        stop(p, false);
    }

    /** Keeps {@code child} to be stopped with the mesh, or stops it at once if the mesh closed meanwhile. */
    private synchronized <T> T adopt(T child, List<T> children, Runnable stopNow) {
        if (closed) {
            stopNow.run();
            throw new IllegalStateException("mesh " + spec.cluster().name() + " is closed");
        }
        children.add(child);
        return child;
    }

    /** A fresh {@code <workDir>/pod-<pod>-<n>.log}. */
    synchronized Path nextPodLog(String pod) {
        return spec.workDir().resolve("pod-" + pod + "-" + (++podProcessCount) + ".log");
    }

    /** See {@link LocalMesh#startPrometheus(int, List)}. */
    Prometheus startPrometheus(int port, List<Prometheus.Job> more) throws IOException {
        List<Prometheus.Target> agentTargets = cluster.nodes().stream().map(n -> new Prometheus.Target(AddressPlan
                .hostPort(n.address(), AGENT_METRICS_PORT), Map.of("node", n.name()))).toList();
        List<Prometheus.Job> jobs = new ArrayList<>(List.of(new Prometheus.Job("wisp-control-plane", List.of(
                new Prometheus.Target(AddressPlan.hostPort(cluster.plan().loopback(), CONTROL_PLANE_ADMIN_PORT), Map
                        .of()))),
                new Prometheus.Job(
                        "wisp-node", agentTargets)));
        jobs.addAll(more);
        Prometheus prom = Prometheus.start(jobs, new InetSocketAddress(cluster.underlayAddress(), port), spec
                .workDir().resolve("prometheus"), cluster::onUnderlay);
        return adopt(prom, prometheuses, prom::close);
    }

    // ---- the end

    /**
     * Stops Prometheus, the pods' processes, the agents and the control plane (SIGTERM, SIGKILL after
     * 15 s) and reaps them, so their cgroups can be removed: a dead child not yet waited for keeps its
     * cgroup busy. Failures are added to {@code failures}.
     *
     * @return false when this was already done
     */
    boolean stopAll(List<RuntimeException> failures) {
        List<Process> children;
        List<Prometheus> proms;
        synchronized (this) {
            if (closed) {
                return false;
            }
            closed = true;
            proms = List.copyOf(prometheuses);
            children = new ArrayList<>(podProcesses);
            children.addAll(agents.values());
            if (controlPlane != null) {
                children.add(controlPlane);
            }
        }
        for (Prometheus p : proms) {
            LocalMesh.run(failures, p::close);
        }
        children.forEach(Process::destroy);
        for (Process p : children) {
            LocalMesh.run(failures, () -> stop(p, false));
        }
        return true;
    }

    private static void stop(Process p, boolean kill) {
        requireNonNull(p, "p");
        if (kill) {
            p.destroyForcibly();
        } else {
            p.destroy();
        }
        try {
            if (!p.waitFor(15, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(15, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
        }
    }
}
