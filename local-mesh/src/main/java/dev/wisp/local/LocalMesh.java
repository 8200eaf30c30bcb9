package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import java.net.InetSocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The whole mesh on one machine: a {@link LocalCluster} (host link on), the control plane
 * ({@code wisp control-plane}, a child JVM in the underlay namespace, watching a YAML directory), one
 * node agent per node ({@code wisp node --control-plane … --capture --pods-dir …}, a child JVM in
 * its node's namespace and cgroup), and the pod files that tell each agent which pods to capture.
 *
 * <pre>
 *  workDir/  control-plane.log  node1.log …  (appended across restarts)
 *            state/  (the control plane's CA and node-credentials/*.token)
 *            pods/node1/*.json …  (what each agent captures)
 *  configDir/ wisp-cluster-NAME.yaml  (generated Node, Pod, Service, MeshConfig objects)
 *             *.yaml  (anything else: policies, applied with {@link #apply} or by copying files)
 * </pre>
 *
 * Ports: the control plane listens on {@code <underlay address>:15012} (agents) and
 * {@code 127.0.0.1:15014} of the underlay namespace ({@code [::1]:15014} in an IPv6-only cluster: admin,
 * {@code /metrics}); each agent keeps its
 * admin on {@code 127.0.0.1:15000} of its node namespace ({@link #agentAdmin} reaches it with
 * {@code setns}), metrics on {@code <node address>:15020} (reachable from the host through the host
 * link).
 *
 * <p>Teardown: {@link #close} stops the processes, reaps them and removes the cluster;
 * {@link #down(String)} does the same by name from another process, e.g. after a crash: every
 * process of ours runs in a cgroup under {@code <cgroup2>/wisp/<name>/}, which it empties.
 *
 * <p>Waypoints: a waypoint {@code Gateway} saved in the config directory gets a pod of its own and
 * {@code wisp waypoint} in it, stopped and removed when the Gateway goes ({@link MeshWaypoints}).
 *
 * <p>The parts, each its own class: {@link MeshProcesses} (the child processes: command lines,
 * start, readiness, restart, stop), {@link MeshWaypoints} (the waypoints of Gateways), {@link ProcessLog} (a child's log and waiting on it),
 * {@link MeshConfigDirectory} and {@link MeshObjects} (the watched directory and the generated
 * objects), {@link MeshRegistry} (which meshes run and who owns them). This class puts them in order
 * ({@link #up}, {@link #close}) and keeps the public API.
 *
 * <p>Thread safety: every method may be called from any thread; process management is serialized
 * on the {@link MeshProcesses} monitor.
 */
public final class LocalMesh implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(LocalMesh.class);
    /** The control plane's agent port, on the underlay address. The other ports: {@link MeshProcesses}. */
    public static final int XDS_PORT = 15012;
    /** The control plane's name in {@link #log}, {@link #warnings} and {@link #logFile}. */
    public static final String CONTROL_PLANE = MeshProcesses.CONTROL_PLANE;

    private final MeshSpec spec;
    private final LocalCluster cluster;
    private final Path stateDir;
    private final MeshConfigDirectory configDirectory;
    private final MeshProcesses processes;
    private final MeshWaypoints waypoints;

    private LocalMesh(MeshSpec spec, LocalCluster cluster, List<String> agentCommand) {
        this.spec = spec;
        this.cluster = cluster;
        this.stateDir = spec.workDir().resolve("state");
        this.configDirectory = new MeshConfigDirectory(spec.configDir(), spec.cluster().name());
        this.processes = new MeshProcesses(spec, cluster, stateDir, agentCommand);
        this.waypoints = new MeshWaypoints(spec, cluster, processes, () -> configDirectory.writeGenerated(
                MeshObjects.yaml(cluster, spec)));
    }

    /**
     * Builds the cluster and starts the mesh on it; returns once the control plane has a live
     * configuration and every agent is ready, has enrolled its pods and holds every pod's workload.
     * A previous run of the same cluster name (even a crashed one) is removed first; on failure,
     * everything started is removed again and the exception names the log to read.
     *
     * @throws ClusterException without root, or when a step fails
     */
    public static LocalMesh up(MeshSpec spec) {
        requireNonNull(spec, "spec");
        LocalCluster.requireRoot();
        String name = spec.cluster().name();
        down(name);
        LocalMesh mesh = null;
        try {
            prepareDirectories(spec);
            List<String> agentCommand = spec.agentCommand() != null
                    ? spec.agentCommand()
                    : AgentAotCache.agentCommand(MeshProcesses.AGENT_JVM.applyTo(spec.wispCommand()));
            MeshRegistry.register(spec);
            LocalCluster cluster = LocalCluster.up(spec.cluster());
            mesh = new LocalMesh(spec, cluster, agentCommand);
            mesh.configDirectory.writeGenerated(MeshObjects.yaml(cluster, spec));
            for (LocalCluster.Pod p : cluster.pods()) {
                if (p.spec().captured()) {
                    cluster.writePodFile(p, mesh.processes.podsDir(p.node()));
                }
            }
            mesh.processes.startControlPlane();
            for (LocalCluster.Node n : cluster.nodes()) {
                mesh.processes.startAgent(n);
            }
            for (LocalCluster.Node n : cluster.nodes()) {
                mesh.processes.awaitAgentReady(n, 0);
            }
            mesh.waypoints.start();
            log.info("mesh {} up: {} nodes, {} pods; logs and state in {}", name, cluster.nodes().size(), cluster
                    .pods().size(), spec.workDir());
            return mesh;
        } catch (RuntimeException e) {
            try {
                if (mesh != null) {
                    mesh.close();
                } else {
                    down(name);
                }
            } catch (RuntimeException cleanup) {
                e.addSuppressed(cleanup);
            }
            throw e;
        }
    }

    private static void prepareDirectories(MeshSpec spec) {
        try {
            Files.createDirectories(spec.workDir());
            Files.createDirectories(spec.configDir());
            // A fresh state directory per run: node tokens and the CA belong to this cluster's life.
            PathCleanup.deleteTree(spec.workDir().resolve("state"));
            PathCleanup.deleteTree(spec.workDir().resolve("pods"));
            PathCleanup.deleteTree(spec.workDir().resolve("prometheus"));
            Files.deleteIfExists(spec.workDir().resolve(MeshProcesses.CONTROL_PLANE + ".log"));
            for (int i = 1; i <= spec.cluster().nodes(); i++) {
                Files.deleteIfExists(spec.workDir().resolve("node" + i + ".log"));
                Files.createDirectories(spec.workDir().resolve("pods").resolve("node" + i));
            }
        } catch (IOException e) {
            throw new ClusterException("cannot prepare " + spec.workDir() + ": " + e.getMessage(), e);
        }
    }

    // ---- accessors

    public MeshSpec spec() {
        return spec;
    }

    /**
     * The name of {@code node}'s WireGuard interface (in its namespace; its UAPI socket is
     * {@code /var/run/wireguard/<name>.sock}), when the mesh runs WireGuard.
     */
    public String wireguardInterface(String node) {
        if (!spec.wireguard()) {
            throw new IllegalStateException("mesh " + spec.cluster().name() + " runs without WireGuard");
        }
        return MeshProcesses.wireguardInterface(cluster, node(node));
    }

    public LocalCluster cluster() {
        return cluster;
    }

    public String name() {
        return spec.cluster().name();
    }

    /** The directory the control plane watches: save a {@code *.yaml} there and it applies. */
    public Path configDir() {
        return spec.configDir();
    }

    /** Logs, the control plane's state and the agents' pods directories. */
    public Path workDir() {
        return spec.workDir();
    }

    /** The control plane's state directory (CA, node credentials). */
    public Path stateDir() {
        return stateDir;
    }

    /** The name of the generated file in the config directory ({@code wisp-cluster-NAME.yaml}). */
    public static String generatedFileName(String cluster) {
        return MeshConfigDirectory.generatedFileName(cluster);
    }

    /**
     * {@code 10.<base+1>.250.<i>} ({@code fd00:<base+1>:250::<i>} in an IPv6-only cluster): an address
     * for a Service's clusterIP that no pod or node uses.
     */
    public static String serviceAddress(ClusterSpec cluster, int i) {
        return AddressPlan.of(cluster).service(i);
    }

    /**
     * {@code fd00:<base+1>:250::<i>}: the IPv6 VIP a dual-stack cluster gives the Service whose clusterIP
     * is {@link #serviceAddress}{@code (cluster, i)}.
     */
    public static String serviceAddress6(ClusterSpec cluster, int i) {
        return AddressPlan.ipv6Twin(serviceAddress(cluster, i));
    }

    /** The node named {@code node} (e.g. {@code node1}). */
    public LocalCluster.Node node(String node) {
        requireNonNull(node, "node");
        return cluster.nodes().stream().filter(n -> n.name().equals(node)).findFirst().orElseThrow(
                () -> new IllegalArgumentException("no node '" + node + "' in cluster " + name() + " (node1..node"
                        + cluster.nodes().size() + ")"));
    }

    public LocalCluster.Pod pod(String pod) {
        return cluster.pod(pod);
    }

    /** The SPIFFE ID of {@code pod}'s service account (trust domain cluster.local unless configured). */
    public String spiffeId(String pod) {
        LocalCluster.Pod p = pod(pod);
        return "spiffe://" + MeshObjects.trustDomain(spec) + "/ns/" + p.spec().namespace() + "/sa/" + p.spec()
                .serviceAccount();
    }

    /** {@code <node address>:15020}: the agent's Prometheus endpoint, reachable from the host. */
    public String metricsAddress(String node) {
        return AddressPlan.hostPort(node(node).address(), MeshProcesses.AGENT_METRICS_PORT);
    }

    /** {@code http://<node address>:15020/metrics}. */
    public String metricsUrl(String node) {
        return "http://" + metricsAddress(node) + "/metrics";
    }

    /** The agents' pods directory of {@code node}. */
    public Path podsDir(String node) {
        return processes.podsDir(node(node));
    }

    /**
     * Pod {@code pod}'s SPIFFE Workload API socket, served by its node's agent (for
     * {@code SPIFFE_ENDPOINT_SOCKET=unix:<path>}); only the pod's own processes get an answer.
     */
    public Path workloadApiSocket(String pod) {
        LocalCluster.Pod p = pod(pod);
        return processes.workloadApiDir(p.node()).resolve(p.name()).resolve("socket");
    }

    /** The log file of {@code process}: {@code control-plane} or a node name. */
    public Path logFile(String process) {
        requireNonNull(process, "process");
        if (!process.equals(MeshProcesses.CONTROL_PLANE)) {
            node(process);
        }
        return processes.log(process).file();
    }

    /** The log of {@code process} ({@code control-plane} or a node name), all runs; empty if none. */
    public String log(String process) {
        return log(process, 0);
    }

    /** What the log of {@code process} gained after byte {@code offset} (e.g. since a start). */
    public String log(String process, long offset) {
        return new ProcessLog(logFile(process)).since(offset);
    }

    /**
     * The first {@code max} distinct warnings and errors (WARN or ERROR lines, and access-log lines
     * with an {@code error=}) in {@code process}'s log after byte {@code offset}: what to show when
     * something timed out. A refusal repeated every second shows once.
     */
    public List<String> warnings(String process, long offset, int max) {
        return new ProcessLog(logFile(process)).firstProblems(offset, max);
    }

    // ---- configuration

    /**
     * Saves {@code yaml} as {@code fileName} in the config directory atomically (temp file + rename,
     * so the control plane never reads half of it); it applies within about a second.
     */
    public void apply(String fileName, String yaml) {
        configDirectory.apply(fileName, yaml);
    }

    /** Removes {@code fileName} from the config directory (its objects go); false if it was not there. */
    public boolean delete(String fileName) {
        return configDirectory.delete(fileName);
    }

    // ---- processes

    /**
     * Starts {@code command} inside {@code pod} (its network namespace and cgroup, so the mesh
     * captures it); stdout and stderr are merged into the returned process's input stream. Stopped
     * with the mesh.
     */
    public Process startInPod(String pod, List<String> command) throws IOException {
        return processes.startInPod(pod(pod), command, null);
    }

    /** As {@link #startInPod(String, List)}, with stdout and stderr appended to {@code logFile}. */
    public Process startInPod(String pod, List<String> command, Path logFile) throws IOException {
        requireNonNull(logFile, "logFile");
        return processes.startInPod(pod(pod), command, logFile);
    }

    /** As {@link #startInPod(String, List)}, logging to {@code <workDir>/pod-<pod>-<n>.log}. */
    public Path startInPodLogged(String pod, List<String> command) throws IOException {
        Path file = processes.nextPodLog(pod);
        startInPod(pod, command, file);
        return file;
    }

    /**
     * {@code GET path} from {@code node}'s agent admin ({@code 127.0.0.1:15000} inside the node's
     * namespace, e.g. {@code /config_dump}, {@code /flows}); the body.
     */
    public String agentAdmin(String node, String path) throws IOException {
        return InNetns.httpGet(node(node).netns(), MeshProcesses.AGENT_ADMIN_PORT, path);
    }

    /** The control plane's admin address inside the underlay namespace (loopback: {@code [::1]} when IPv6-only). */
    public InetSocketAddress controlPlaneAdminAddress() {
        return processes.controlPlaneAdmin();
    }

    /** {@code GET path} from the control plane's admin ({@code /api/v1/status}, {@code /metrics}). */
    public String controlPlaneAdmin(String path) throws IOException {
        return InNetns.httpGet(cluster.underlayNetns(), processes.controlPlaneAdmin(), path);
    }

    /**
     * The pod of the waypoint the mesh runs for Gateway {@code namespace/gateway} (see
     * {@link MeshWaypoints}): named after the Gateway, on the first node, not captured; empty until it
     * is started, about a second after the Gateway is saved in the config directory.
     */
    public Optional<LocalCluster.Pod> waypointPod(String namespace, String gateway) {
        return Optional.ofNullable(waypoints.pods().get(namespace + "/" + gateway));
    }

    /** The log of the waypoint of Gateway {@code namespace/gateway}, while it runs. */
    public Optional<Path> waypointLog(String namespace, String gateway) {
        return waypoints.log(namespace, gateway);
    }

    /** {@code POST path} to the control plane's admin (e.g. {@code /api/v1/ca/rotate?step=add}); the body. */
    public String controlPlaneAdminPost(String path) throws IOException {
        return InNetns.httpPost(cluster.underlayNetns(), processes.controlPlaneAdmin(), path);
    }

    /** The running control plane process, if any. */
    public Optional<Process> controlPlaneProcess() {
        return processes.controlPlane();
    }

    /** The running agent process of {@code node}, if any. */
    public Optional<Process> agentProcess(String node) {
        return processes.agent(node(node));
    }

    /** Kills the control plane with SIGKILL and reaps it; agents keep serving their last state. */
    public void killControlPlane() {
        processes.killControlPlane();
    }

    /**
     * Starts the control plane (if it is not running) and waits until its configuration is live.
     * The state directory is kept, so agents' tokens and the CA stay valid across restarts.
     */
    public void startControlPlane() {
        processes.startControlPlane();
    }

    /**
     * Restarts {@code node}'s agent: stops it with SIGKILL ({@code kill}) or SIGTERM (it drains for
     * a second), reaps it, starts it again and waits until it is ready with its pods enrolled.
     *
     * @return when each step ended, and what the agent logged meanwhile
     */
    public AgentRestart restartAgent(String node, boolean kill) {
        return processes.restartAgent(node(node), kill);
    }

    /**
     * Stops {@code node}'s agent (SIGTERM) and starts it again with exactly {@code capabilities} as
     * its bounding set, without waiting for it to be ready (it may be meant to fail): how a test
     * proves what each capability is for. {@link #restartAgent} brings back the spec's agent.
     *
     * @return the offset of the agent's log where the new run's lines start (see {@link #log(String, long)})
     */
    public long startAgentWithCapabilities(String node, List<String> capabilities) {
        return processes.replaceAgent(node(node), capabilities);
    }

    /**
     * Replaces {@code node}'s agent the hitless way ({@code wisp node --takeover}): starts a new one
     * with the spec's arguments and {@code --takeover} beside the running one and waits until the new
     * one is ready with its pods enrolled; the old one, handed over, drains meanwhile and exits by itself.
     */
    public AgentTakeover takeOverAgent(String node) {
        return processes.takeOverAgent(node(node));
    }

    /**
     * A hand-over of {@link #takeOverAgent}.
     *
     * @param old the old agent's process, draining (it exits by itself; the mesh no longer stops it)
     * @param logOffset where the new agent's lines start in the node's log (both agents write it)
     * @param started when the new agent was started (epoch milliseconds)
     * @param ready when it was ready
     */
    public record AgentTakeover(Process old, long logOffset, long started, long ready) {}

    /**
     * The steps of {@link #restartAgent}, in epoch milliseconds.
     *
     * @param stopping when the old agent was signalled
     * @param exited when it had exited (drained) and was reaped
     * @param started when the new agent's process was started
     * @param ready when the new agent was ready: listening, its pods enrolled, every workload known
     * @param log what the agent's log gained meanwhile (the old agent's shutdown, the new one's start)
     */
    public record AgentRestart(long stopping, long exited, long started, long ready, String log) {}

    /**
     * Starts Debian's Prometheus in the underlay namespace, listening on
     * {@code <underlay address>:port} (reachable from the host), scraping the control plane
     * ({@code 127.0.0.1:15014} there, job {@code wisp-control-plane}) and every agent
     * ({@code <node>:15020}, job {@code wisp-node}, label {@code node}) every second. Stopped with
     * the mesh.
     */
    public Prometheus startPrometheus(int port) throws IOException {
        return startPrometheus(port, List.of());
    }

    /**
     * {@link #startPrometheus(int)} with {@code more} scrape jobs (e.g. a waypoint's {@code
     * <pod address>:15020}: the underlay routes every pod CIDR).
     */
    public Prometheus startPrometheus(int port, List<Prometheus.Job> more) throws IOException {
        return processes.startPrometheus(port, more);
    }

    /**
     * Stops Prometheus, the pods' processes, the agents (SIGTERM, then SIGKILL after 15 s) and the
     * control plane, reaps them, tears the cluster down and removes the generated config file.
     * Idempotent; safe from a shutdown hook.
     */
    @Override
    public void close() {
        List<RuntimeException> failures = new ArrayList<>();
        waypoints.close();
        if (!processes.stopAll(failures)) {
            return;
        }
        run(failures, cluster::close);
        run(failures, () -> MeshRegistry.unregister(name()));
        run(failures, configDirectory::removeGenerated);
        if (!failures.isEmpty()) {
            ClusterException e = new ClusterException("stopping mesh " + name() + ": " + failures.getFirst()
                    .getMessage());
            failures.forEach(e::addSuppressed);
            throw e;
        }
        log.info("mesh {} stopped", name());
    }

    /** Registers a JVM shutdown hook that closes this mesh (Ctrl-C, SIGTERM); returns this. */
    public LocalMesh closeOnShutdown() {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                close();
            } catch (RuntimeException e) {
                log.error("stopping mesh {}: {} (run 'wisp cluster down --name {}')", name(), e.getMessage(),
                        name());
            }
        }, "wisp-mesh-" + name() + "-shutdown"));
        return this;
    }

    /** Runs one teardown step, collecting its failure so that the next steps still run. */
    static void run(List<RuntimeException> failures, Runnable step) {
        try {
            step.run();
        } catch (RuntimeException e) {
            failures.add(e);
        }
    }

    // ---- by name, from any process

    /** What is known about a cluster started by {@link #up} in this or another process. */
    public record Status(String name, long ownerPid, boolean ownerAlive, Path workDir, Path configDir,
            List<Long> processes) {}

    /** The status of cluster {@code name}, or empty when no mesh of that name is registered. */
    public static Optional<Status> status(String name) {
        return MeshRegistry.status(name);
    }

    /** Names of every registered mesh. */
    public static List<String> registered() {
        return MeshRegistry.registered();
    }

    /**
     * Removes everything of mesh {@code name} whoever started it, e.g. after a crash or from another
     * shell: kills every process in the cluster's cgroups (control plane, agents, pods' processes,
     * Prometheus), removes namespaces, links, cgroups and pinned BPF objects
     * ({@link LocalCluster#down}), and the generated config file. Idempotent.
     */
    public static void down(String name) {
        requireNonNull(name, "name");
        LocalCluster.requireRoot();
        List<RuntimeException> failures = new ArrayList<>();
        run(failures, () -> LocalCluster.down(name));
        run(failures, () -> MeshRegistry.unregister(name));
        if (!failures.isEmpty()) {
            ClusterException e = new ClusterException(failures.getFirst().getMessage());
            failures.forEach(e::addSuppressed);
            throw e;
        }
    }
}
