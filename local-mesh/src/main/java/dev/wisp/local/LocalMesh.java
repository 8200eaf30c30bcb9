package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Pattern;
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
 * {@code 127.0.0.1:15014} of the underlay namespace (admin, {@code /metrics}); each agent keeps its
 * admin on {@code 127.0.0.1:15000} of its node namespace ({@link #agentAdmin} reaches it with
 * {@code setns}), metrics on {@code <node address>:15020} (reachable from the host through the host
 * link).
 *
 * <p>Teardown: {@link #close} stops the processes, reaps them and removes the cluster;
 * {@link #down(String)} does the same by name from another process, e.g. after a crash: every
 * process of ours runs in a cgroup under {@code <cgroup2>/wisp/<name>/}, which it empties.
 *
 * <p>Thread safety: every method may be called from any thread; process management is serialized
 * on this object's monitor.
 */
public final class LocalMesh implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(LocalMesh.class);
    /** The control plane's agent port (on the underlay address) and admin port (underlay loopback). */
    public static final int XDS_PORT = 15012;
    public static final int CONTROL_PLANE_ADMIN_PORT = 15014;
    /** The agents' ports: admin (node loopback), metrics and readiness (node address). */
    public static final int AGENT_ADMIN_PORT = 15000;
    public static final int AGENT_METRICS_PORT = 15020;
    public static final int AGENT_READY_PORT = 15021;
    /** Where {@link #down} finds a cluster's directories after a crash. */
    static final Path REGISTRY = Path.of("/run/wisp/mesh");
    private static final Pattern FILE_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,100}\\.yaml");
    private static final String CONTROL_PLANE = "control-plane";

    private final MeshSpec spec;
    private final LocalCluster cluster;
    private final Path stateDir;
    /** {@link MeshSpec#wispCommand()}, with an AOT class cache when one can be had ({@link AgentAotCache}). */
    private final List<String> agentCommand;
    // Guarded by `this`.
    private Process controlPlane;
    private final Map<String, Process> agents = new LinkedHashMap<>();
    private final List<Process> podProcesses = new ArrayList<>();
    private final List<Prometheus> prometheuses = new ArrayList<>();
    private int podProcessCount;
    private boolean closed;

    private LocalMesh(MeshSpec spec, LocalCluster cluster, List<String> agentCommand) {
        this.spec = spec;
        this.cluster = cluster;
        this.agentCommand = agentCommand;
        this.stateDir = spec.workDir().resolve("state");
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
            List<String> agentCommand = AgentAotCache.agentCommand(spec.wispCommand());
            register(spec);
            LocalCluster cluster = LocalCluster.up(spec.cluster());
            mesh = new LocalMesh(spec, cluster, agentCommand);
            mesh.writeGenerated();
            for (LocalCluster.Pod p : cluster.pods()) {
                cluster.writePodFile(p, mesh.podsDir(p.node().name()));
            }
            mesh.startControlPlane();
            for (LocalCluster.Node n : cluster.nodes()) {
                mesh.startAgentProcess(n);
            }
            for (LocalCluster.Node n : cluster.nodes()) {
                mesh.awaitAgentReady(n, 0);
            }
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
            deleteTree(spec.workDir().resolve("state"));
            deleteTree(spec.workDir().resolve("pods"));
            deleteTree(spec.workDir().resolve("prometheus"));
            for (String f : List.of(CONTROL_PLANE)) {
                Files.deleteIfExists(spec.workDir().resolve(f + ".log"));
            }
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
        return "wisp-cluster-" + cluster + ".yaml";
    }

    /** {@code 10.<base+1>.250.<i>}: an address for a Service's clusterIP that no pod or node uses. */
    public static String serviceAddress(ClusterSpec cluster, int i) {
        if (i < 1 || i > 254) {
            throw new IllegalArgumentException("service address index " + i + " is outside 1..254");
        }
        return "10." + (cluster.base() + 1) + ".250." + i;
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
        return "spiffe://" + trustDomain() + "/ns/" + p.spec().namespace() + "/sa/" + p.spec().serviceAccount();
    }

    private String trustDomain() {
        if (spec.meshConfig() != null) {
            try {
                JsonNode td = new YAMLMapper().readTree(spec.meshConfig()).path("spec").path("trustDomain");
                if (td.isTextual()) {
                    return td.asText();
                }
            } catch (IOException e) {
                log.debug("MeshConfig unreadable here; the control plane will say why: {}", e.toString());
            }
        }
        return "cluster.local";
    }

    /** {@code <node address>:15020}: the agent's Prometheus endpoint, reachable from the host. */
    public String metricsAddress(String node) {
        return node(node).address() + ":" + AGENT_METRICS_PORT;
    }

    /** {@code http://<node address>:15020/metrics}. */
    public String metricsUrl(String node) {
        return "http://" + metricsAddress(node) + "/metrics";
    }

    /** The agents' pods directory of {@code node}. */
    public Path podsDir(String node) {
        return spec.workDir().resolve("pods").resolve(node(node).name());
    }

    /** The log file of {@code process}: {@code control-plane} or a node name. */
    public Path logFile(String process) {
        requireNonNull(process, "process");
        if (!process.equals(CONTROL_PLANE)) {
            node(process);
        }
        return spec.workDir().resolve(process + ".log");
    }

    /** The log of {@code process} ({@code control-plane} or a node name), all runs; empty if none. */
    public String log(String process) {
        return read(logFile(process));
    }

    // ---- configuration

    /**
     * Saves {@code yaml} as {@code fileName} in the config directory atomically (temp file + rename,
     * so the control plane never reads half of it); it applies within about a second.
     */
    public void apply(String fileName, String yaml) {
        requireNonNull(yaml, "yaml");
        Path file = configFile(fileName);
        Path tmp = spec.configDir().resolve("." + fileName + ".tmp");
        try {
            Files.writeString(tmp, yaml);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new ClusterException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** Removes {@code fileName} from the config directory (its objects go); false if it was not there. */
    public boolean delete(String fileName) {
        Path file = configFile(fileName);
        try {
            return Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new ClusterException("cannot delete " + file + ": " + e.getMessage(), e);
        }
    }

    private Path configFile(String fileName) {
        requireNonNull(fileName, "fileName");
        if (!FILE_NAME.matcher(fileName).matches()) {
            throw new IllegalArgumentException("config file name '" + fileName
                    + "': a plain file name ending in .yaml, no directories");
        }
        if (fileName.equals(generatedFileName(name()))) {
            throw new IllegalArgumentException(fileName + " is generated by the mesh; use another file name");
        }
        return spec.configDir().resolve(fileName);
    }

    /** The Node, Pod, Service (and MeshConfig) objects of this mesh, as the control plane reads them. */
    String generatedYaml() {
        YAMLMapper yaml = new YAMLMapper();
        StringBuilder out = new StringBuilder("# Generated by the local mesh '" + name()
                + "' at start-up and removed at shutdown: do not edit.\n");
        try {
            for (LocalCluster.Node n : cluster.nodes()) {
                out.append(yaml.writeValueAsString(Map.of("apiVersion", "v1", "kind", "Node", "metadata", Map.of(
                        "name", n.name()), "spec", Map.of("podCIDR", n.podCidr()), "status",
                        Map.of("addresses",
                                List.of(Map.of("type", "InternalIP", "address", n.address()))))));
            }
            for (LocalCluster.Pod p : cluster.pods()) {
                Map<String, Object> meta = new LinkedHashMap<>();
                meta.put("name", p.name());
                meta.put("namespace", p.spec().namespace());
                meta.put("uid", p.name());
                meta.put("labels", p.spec().labels());
                out.append(yaml.writeValueAsString(Map.of("apiVersion", "v1", "kind", "Pod", "metadata", meta,
                        "spec", Map.of("nodeName", p.node().name(), "serviceAccountName", p.spec().serviceAccount()),
                        "status", Map.of("podIP", p.ip(), "phase", "Running"))));
            }
            for (MeshSpec.ServiceSpec s : spec.services()) {
                out.append(yaml.writeValueAsString(Map.of("apiVersion", "v1", "kind", "Service", "metadata", Map.of(
                        "name", s.name(), "namespace", s.namespace()), "spec",
                        Map.of("selector", s.selector(),
                                "clusterIP", s.clusterIp(), "ports", List.of(Map.of("name", "tcp-" + s.port(),
                                        "port", s.port(), "targetPort", s.targetPort()))))));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (spec.meshConfig() != null) {
            out.append("---\n").append(spec.meshConfig().strip()).append('\n');
        }
        return out.toString();
    }

    private void writeGenerated() {
        Path file = spec.configDir().resolve(generatedFileName(name()));
        Path tmp = spec.configDir().resolve("." + file.getFileName() + ".tmp");
        try {
            Files.writeString(tmp, generatedYaml());
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new ClusterException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    // ---- processes

    /**
     * Starts {@code command} inside {@code pod} (its network namespace and cgroup, so the mesh
     * captures it); stdout and stderr are merged into the returned process's input stream. Stopped
     * with the mesh.
     */
    public Process startInPod(String pod, List<String> command) throws IOException {
        return track(cluster.inPod(pod(pod), command).redirectErrorStream(true).start());
    }

    /** As {@link #startInPod(String, List)}, with stdout and stderr appended to {@code logFile}. */
    public Process startInPod(String pod, List<String> command, Path logFile) throws IOException {
        requireNonNull(logFile, "logFile");
        return track(cluster.inPod(pod(pod), command).redirectErrorStream(true).redirectOutput(
                ProcessBuilder.Redirect.appendTo(logFile.toFile())).start());
    }

    /** As {@link #startInPod(String, List)}, logging to {@code <workDir>/pod-<pod>-<n>.log}. */
    public Path startInPodLogged(String pod, List<String> command) throws IOException {
        Path file;
        synchronized (this) {
            file = spec.workDir().resolve("pod-" + pod + "-" + (++podProcessCount) + ".log");
        }
        startInPod(pod, command, file);
        return file;
    }

    private synchronized Process track(Process p) {
        if (closed) {
            p.destroyForcibly();
            throw new IllegalStateException("mesh " + name() + " is closed");
        }
        podProcesses.add(p);
        return p;
    }

    /**
     * {@code GET path} from {@code node}'s agent admin ({@code 127.0.0.1:15000} inside the node's
     * namespace, e.g. {@code /config_dump}, {@code /flows}); the body.
     */
    public String agentAdmin(String node, String path) throws IOException {
        return InNetns.httpGet(node(node).netns(), AGENT_ADMIN_PORT, path);
    }

    /** {@code GET path} from the control plane's admin ({@code /api/v1/status}, {@code /metrics}). */
    public String controlPlaneAdmin(String path) throws IOException {
        return InNetns.httpGet(cluster.underlayNetns(), CONTROL_PLANE_ADMIN_PORT, path);
    }

    /** The running control plane process, if any. */
    public synchronized Optional<Process> controlPlaneProcess() {
        return Optional.ofNullable(controlPlane).filter(Process::isAlive);
    }

    /** The running agent process of {@code node}, if any. */
    public synchronized Optional<Process> agentProcess(String node) {
        return Optional.ofNullable(agents.get(node(node).name())).filter(Process::isAlive);
    }

    /** Kills the control plane with SIGKILL and reaps it; agents keep serving their last state. */
    public synchronized void killControlPlane() {
        if (controlPlane != null) {
            stop(controlPlane, true);
            controlPlane = null;
        }
    }

    /**
     * Starts the control plane (if it is not running) and waits until its configuration is live.
     * The state directory is kept, so agents' tokens and the CA stay valid across restarts.
     */
    public synchronized void startControlPlane() {
        if (controlPlane != null && controlPlane.isAlive()) {
            return;
        }
        Path logFile = logFile(CONTROL_PLANE);
        long offset = size(logFile);
        List<String> cmd = new ArrayList<>(spec.wispCommand());
        cmd.addAll(List.of("control-plane", "--config-dir", spec.configDir().toString(), "--state-dir", stateDir
                .toString(), "--listen", cluster.underlayAddress() + ":" + XDS_PORT, "--admin",
                "127.0.0.1:"
                        + CONTROL_PLANE_ADMIN_PORT));
        try {
            controlPlane = cluster.onUnderlay(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect
                    .appendTo(logFile.toFile())).start();
        } catch (IOException e) {
            throw new ClusterException("cannot start the control plane (" + cmd.getFirst() + "): " + e.getMessage(),
                    e);
        }
        Process p = controlPlane;
        await("the control plane", p, logFile, () -> {
            String text = readFrom(logFile, offset);
            return text.contains("control plane: agents on") && Pattern.compile("configuration generation \\d+ live")
                    .matcher(text).find();
        });
    }

    /**
     * Restarts {@code node}'s agent: stops it with SIGKILL ({@code kill}) or SIGTERM (it drains for
     * a second), reaps it, starts it again and waits until it is ready with its pods enrolled.
     *
     * @return when each step ended, and what the agent logged meanwhile
     */
    public synchronized AgentRestart restartAgent(String node, boolean kill) {
        LocalCluster.Node n = node(node);
        long logOffset = size(logFile(n.name()));
        long stopping = System.currentTimeMillis();
        Process old = agents.remove(n.name());
        if (old != null) {
            stop(old, kill);
        }
        long exited = System.currentTimeMillis();
        long offset = startAgentProcess(n);
        long started = System.currentTimeMillis();
        awaitAgentReady(n, offset);
        return new AgentRestart(stopping, exited, started, System.currentTimeMillis(), readFrom(logFile(n
                .name()), logOffset));
    }

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

    private synchronized long startAgentProcess(LocalCluster.Node n) {
        Path logFile = logFile(n.name());
        long offset = size(logFile);
        List<String> cmd = new ArrayList<>(agentCommand);
        cmd.addAll(List.of("node", "--node", n.name(), "--control-plane", cluster.underlayAddress() + ":" + XDS_PORT,
                "--token-file", stateDir.resolve("node-credentials").resolve(n.name() + ".token").toString(),
                "--ca-bundle", stateDir.resolve("ca").resolve("bundle.pem").toString(), "--workers", "1",
                "--drain-timeout", "PT1S", "--capture", "--pods-dir", podsDir(n.name()).toString(),
                "--capture-address", n.address(), "--bpf-pin-root", "/sys/fs/bpf/wisp/" + name() + "/" + n.name()));
        cmd.addAll(spec.agentArgs());
        try {
            agents.put(n.name(), cluster.agentOnNode(n, cmd).redirectErrorStream(true).redirectOutput(
                    ProcessBuilder.Redirect.appendTo(logFile.toFile())).start());
        } catch (IOException e) {
            throw new ClusterException("cannot start the agent of " + n.name() + ": " + e.getMessage(), e);
        }
        return offset;
    }

    private void awaitAgentReady(LocalCluster.Node n, long offset) {
        Process p;
        synchronized (this) {
            p = agents.get(n.name());
        }
        Path logFile = logFile(n.name());
        List<String> podNames = cluster.pods().stream().filter(pod -> pod.node().equals(n)).map(
                LocalCluster.Pod::name).toList();
        int allPods = cluster.pods().size();
        await("the agent of " + n.name(), p, logFile, () -> {
            String text = readFrom(logFile, offset);
            if (!text.contains("node agent for " + n.name() + " ready")) {
                return false;
            }
            for (String pod : podNames) {
                if (!text.contains("enrolled pod " + pod + " (")) {
                    return false;
                }
            }
            try {
                JsonNode dump = new ObjectMapper().readTree(agentAdmin(n.name(), "/config_dump"));
                return dump.path("workloads").size() >= allPods;
            } catch (IOException e) {
                return false;
            }
        });
    }

    /** Polls {@code ready} every 100 ms until true, the process dies, or the spec's timeout. */
    private void await(String what, Process p, Path logFile, BooleanSupplier ready) {
        long deadline = System.nanoTime() + spec.readyTimeout().toNanos();
        while (!ready.getAsBoolean()) {
            if (!p.isAlive()) {
                throw new ClusterException(what + " exited (status " + p.exitValue() + ") before it was ready; "
                        + "see " + logFile + tail(logFile));
            }
            if (System.nanoTime() > deadline) {
                throw new ClusterException(what + " was not ready within " + spec.readyTimeout().toSeconds()
                        + " s; see " + logFile + tail(logFile));
            }
            p.onExit().completeOnTimeout(p, 100, TimeUnit.MILLISECONDS).join();
        }
    }

    private static String tail(Path logFile) {
        List<String> lines = read(logFile).lines().filter(l -> l.contains("ERROR") || l.contains("WARN") || l
                .startsWith("error")).toList();
        return lines.isEmpty() ? "" : " (last problem: " + lines.getLast().strip() + ")";
    }

    /**
     * Starts Debian's Prometheus in the underlay namespace, listening on
     * {@code <underlay address>:port} (reachable from the host), scraping the control plane
     * ({@code 127.0.0.1:15014} there, job {@code wisp-control-plane}) and every agent
     * ({@code <node>:15020}, job {@code wisp-node}, label {@code node}) every second. Stopped with
     * the mesh.
     */
    public Prometheus startPrometheus(int port) throws IOException {
        List<Prometheus.Target> agentTargets = cluster.nodes().stream().map(n -> new Prometheus.Target(
                metricsAddress(n.name()), Map.of("node", n.name()))).toList();
        List<Prometheus.Job> jobs = List.of(new Prometheus.Job("wisp-control-plane", List.of(new Prometheus.Target(
                "127.0.0.1:" + CONTROL_PLANE_ADMIN_PORT, Map.of()))), new Prometheus.Job("wisp-node", agentTargets));
        Prometheus prom = Prometheus.start(jobs, new InetSocketAddress(cluster.underlayAddress(), port), spec
                .workDir().resolve("prometheus"), cluster::onUnderlay);
        synchronized (this) {
            if (closed) {
                prom.close();
                throw new IllegalStateException("mesh " + name() + " is closed");
            }
            prometheuses.add(prom);
        }
        return prom;
    }

    private static void stop(Process p, boolean kill) {
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

    /**
     * Stops Prometheus, the pods' processes, the agents (SIGTERM, then SIGKILL after 15 s) and the
     * control plane, reaps them, tears the cluster down and removes the generated config file.
     * Idempotent; safe from a shutdown hook.
     */
    @Override
    public void close() {
        List<Process> children;
        List<Prometheus> proms;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            proms = List.copyOf(prometheuses);
            children = new ArrayList<>(podProcesses);
            children.addAll(agents.values());
            if (controlPlane != null) {
                children.add(controlPlane);
            }
        }
        List<RuntimeException> failures = new ArrayList<>();
        for (Prometheus p : proms) {
            run(failures, p::close);
        }
        children.forEach(Process::destroy);
        // Reap our children before the cluster removes their cgroups: a dead child not yet waited
        // for keeps its cgroup busy.
        for (Process p : children) {
            run(failures, () -> stop(p, false));
        }
        run(failures, cluster::close);
        run(failures, () -> unregister(name()));
        run(failures, () -> {
            try {
                Files.deleteIfExists(spec.configDir().resolve(generatedFileName(name())));
            } catch (IOException e) {
                throw new ClusterException("cannot remove the generated config file: " + e.getMessage(), e);
            }
        });
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

    private static void run(List<RuntimeException> failures, Runnable step) {
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
        requireNonNull(name, "name");
        Path file = REGISTRY.resolve(name + ".properties");
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        Properties p = new Properties();
        try (var in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(in);
        } catch (IOException e) {
            throw new ClusterException("cannot read " + file + ": " + e.getMessage(), e);
        }
        long owner = Long.parseLong(p.getProperty("owner", "-1"));
        boolean alive = ProcessHandle.of(owner).map(h -> h.isAlive() && h.info().startInstant().map(i -> i
                .toEpochMilli() == Long.parseLong(p.getProperty("ownerStart", "-1"))).orElse(true)).orElse(false);
        return Optional.of(new Status(name, owner, alive, Path.of(p.getProperty("workDir")), Path.of(p.getProperty(
                "configDir")), Cgroups.pids(Cgroups.wispRoot().resolve(name))));
    }

    /** Names of every registered mesh. */
    public static List<String> registered() {
        if (!Files.isDirectory(REGISTRY)) {
            return List.of();
        }
        try (var s = Files.list(REGISTRY)) {
            return s.map(f -> f.getFileName().toString()).filter(f -> f.endsWith(".properties")).map(f -> f
                    .substring(0, f.length() - ".properties".length())).sorted().toList();
        } catch (IOException e) {
            throw new ClusterException("cannot list " + REGISTRY + ": " + e.getMessage(), e);
        }
    }

    private static void register(MeshSpec spec) {
        ProcessHandle self = ProcessHandle.current();
        String text = "owner=" + self.pid() + "\nownerStart=" + self.info().startInstant().map(i -> i.toEpochMilli())
                .orElse(-1L) + "\nworkDir=" + escape(spec.workDir()) + "\nconfigDir=" + escape(spec.configDir())
                + "\n";
        try {
            Files.createDirectories(REGISTRY);
            Path tmp = REGISTRY.resolve("." + spec.cluster().name() + ".tmp");
            Files.writeString(tmp, text);
            Files.move(tmp, REGISTRY.resolve(spec.cluster().name() + ".properties"), StandardCopyOption.ATOMIC_MOVE,
                    StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new ClusterException("cannot register mesh " + spec.cluster().name() + " in " + REGISTRY + ": " + e
                    .getMessage(), e);
        }
    }

    private static String escape(Path p) {
        return p.toString().replace("\\", "\\\\").replace("\n", "\\n");
    }

    private static void unregister(String name) {
        try {
            Optional<Status> s = status(name);
            if (s.isPresent()) {
                Files.deleteIfExists(s.get().configDir().resolve(generatedFileName(name)));
            }
            Files.deleteIfExists(REGISTRY.resolve(name + ".properties"));
            Files.deleteIfExists(REGISTRY);
        } catch (java.nio.file.DirectoryNotEmptyException e) {
            log.debug("{} holds other meshes", REGISTRY);
        } catch (IOException e) {
            throw new ClusterException("cannot unregister mesh " + name + ": " + e.getMessage(), e);
        }
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
        run(failures, () -> unregister(name));
        if (!failures.isEmpty()) {
            ClusterException e = new ClusterException(failures.getFirst().getMessage());
            failures.forEach(e::addSuppressed);
            throw e;
        }
    }

    // ---- files

    private static long size(Path file) {
        try {
            return Files.exists(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    private static String read(Path file) {
        return readFrom(file, 0);
    }

    private static String readFrom(Path file, long offset) {
        try {
            if (!Files.exists(file)) {
                return "";
            }
            byte[] all = Files.readAllBytes(file);
            int from = (int) Math.min(offset, all.length);
            return new String(all, from, all.length - from, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (var s = Files.walk(root)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
