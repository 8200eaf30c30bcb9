package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The local mesh's waypoint deployer, as Istio's deploys a waypoint for a Gateway: every second it
 * reads the operator's files of the config directory, and for each waypoint {@code Gateway} (class
 * {@code wisp-waypoint} or {@code istio-waypoint}, listener {@code {name: mesh, port: 15008,
 * protocol: HBONE}}) it runs {@code wisp waypoint} in a pod of its own on the first node: the pod is
 * named after the Gateway (with {@code -<namespace>} when that name is taken), in the Gateway's
 * namespace, with the Gateway's name as service account, labelled
 * {@code gateway.networking.k8s.io/gateway-name: <gateway>} and {@code istio.io/dataplane-mode: none}
 * (not captured: its 15008 is its own). The pod is added to the cluster and to the generated objects,
 * and the waypoint starts once the node's agent holds the pod's workload (the CA signs the service
 * account only for a node where a pod with it runs). When the Gateway goes, its waypoint is stopped and
 * its pod removed. Its log: {@code <workDir>/waypoint-<namespace>-<gateway>.log}.
 *
 * <p>Thread safety: {@link #sync} runs on the watcher thread (or a caller's, in tests), serialized on
 * this object's monitor.
 */
final class MeshWaypoints implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(MeshWaypoints.class);
    private static final YAMLMapper YAML = new YAMLMapper();
    static final Set<String> CLASSES = Set.of("wisp-waypoint", "istio-waypoint");
    private static final Duration POLL = Duration.ofSeconds(1);
    /** A Kubernetes namespace name (a DNS label): it goes into the waypoint's log file name. */
    private static final java.util.regex.Pattern NAMESPACE = java.util.regex.Pattern.compile(
            "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(120);

    private final MeshSpec spec;
    private final LocalCluster cluster;
    private final MeshProcesses processes;
    private final Runnable regenerate;
    // Guarded by `this`: "namespace/gateway" → its running waypoint.
    private final Map<String, Running> running = new LinkedHashMap<>();
    // Guarded by `this`: Gateways already warned about (a name the local mesh cannot use).
    private final Set<String> unusable = new java.util.HashSet<>();
    private volatile boolean closed;
    private volatile Thread watcher;

    private record Running(LocalCluster.Pod pod, Process process, Path log) {}

    /**
     * @param regenerate rewrites the generated objects' file from the cluster's pods (called after a
     *     waypoint pod is added or removed)
     */
    MeshWaypoints(MeshSpec spec, LocalCluster cluster, MeshProcesses processes, Runnable regenerate) {
        this.spec = requireNonNull(spec, "spec");
        this.cluster = requireNonNull(cluster, "cluster");
        this.processes = requireNonNull(processes, "processes");
        this.regenerate = requireNonNull(regenerate, "regenerate");
    }

    /** Starts the watcher thread (a daemon), which syncs at once and then every second. */
    void start() {
        watcher = Thread.ofPlatform().daemon().name("wisp-mesh-" + spec.cluster().name() + "-waypoints").start(
                () -> {
                    while (!closed) {
                        try {
                            sync();
                        } catch (RuntimeException e) {
                            log.error("mesh {}: waypoints: {}", spec.cluster().name(), e.getMessage(), e);
                        }
                        try {
                            Thread.sleep(POLL); // the directory's poll period, not a synchronisation
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                });
    }

    /** Starts a waypoint for each new waypoint Gateway and stops those whose Gateway went. */
    synchronized void sync() {
        if (closed) {
            return;
        }
        Map<String, Gateway> wanted = gateways(spec.configDir(), MeshConfigDirectory.generatedFileName(spec.cluster()
                .name()));
        for (String key : List.copyOf(running.keySet())) {
            if (!wanted.containsKey(key)) {
                stop(key);
            }
        }
        for (Map.Entry<String, Gateway> e : wanted.entrySet()) {
            if (running.containsKey(e.getKey()) || closed) {
                continue;
            }
            if (!NAMESPACE.matcher(e.getValue().namespace()).matches() || !ClusterSpec.POD.matcher(e.getValue()
                    .name()).matches()) {
                if (unusable.add(e.getKey())) {
                    log.warn("mesh {}: no waypoint for Gateway {}: the local mesh needs a name of 1-16 lower-case "
                            + "letters, digits or '-' starting with a letter, in a namespace named as Kubernetes "
                            + "does", spec.cluster().name(), e.getKey());
                }
                continue;
            }
            running.put(e.getKey(), start(e.getValue()));
        }
    }

    /** The running waypoints' pods by "namespace/gateway". */
    synchronized Map<String, LocalCluster.Pod> pods() {
        Map<String, LocalCluster.Pod> out = new LinkedHashMap<>();
        running.forEach((k, r) -> out.put(k, r.pod()));
        return out;
    }

    /** The log of the waypoint of {@code namespace/gateway}, while it runs. */
    synchronized Optional<Path> log(String namespace, String gateway) {
        return Optional.ofNullable(running.get(namespace + "/" + gateway)).map(Running::log);
    }

    private Running start(Gateway g) {
        String name = cluster.pods().stream().anyMatch(p -> p.name().equals(g.name()))
                ? (g.name() + "-" + g
                        .namespace())
                : g.name();
        if (!ClusterSpec.POD.matcher(name).matches()) {
            throw new ClusterException("no pod name for the waypoint of Gateway " + g.namespace() + "/" + g.name()
                    + ": '" + g.name() + "' is taken and '" + name + "' is longer than 16 characters");
        }
        LocalCluster.Pod pod = cluster.addPod(new ClusterSpec.PodSpec(name, g.namespace(), g.name(), 0, Map.of(
                "gateway.networking.k8s.io/gateway-name", g.name(), "istio.io/dataplane-mode", "none")));
        try {
            regenerate.run();
            // The CA signs the waypoint's service account once the control plane knows its pod here.
            processes.awaitAgentReady(pod.node(), 0);
            List<String> cmd = withJvmOptions(spec.wispCommand(), System.getProperty(JVM_OPTIONS, ""));
            cmd.addAll(List.of("waypoint", "--name", g.name(), "--namespace", g.namespace(), "--service-account", g
                    .name()));
            cmd.addAll(processes.controlPlaneLink(pod.node()));
            if (!spec.cluster().stack().hasIpv4()) {
                // The pod has no IPv4 address: the listeners take IPv6.
                cmd.addAll(List.of("--listen", "[::]:15008", "--metrics", "[::]:15020"));
            }
            Path file = spec.workDir().resolve("waypoint-" + g.namespace() + "-" + g.name() + ".log");
            Process p = processes.startInPod(pod, cmd, file);
            log.info("mesh {}: waypoint {}/{} starting in pod {} on {} ({}), log {}", spec.cluster().name(), g
                    .namespace(), g.name(), name, pod.node().name(), pod.ip(), file);
            return new Running(pod, p, file);
        } catch (IOException | RuntimeException e) {
            cluster.removePod(name);
            regenerate.run();
            throw new ClusterException("cannot start the waypoint of Gateway " + g.namespace() + "/" + g.name()
                    + ": " + e.getMessage(), e);
        }
    }

    /**
     * The system property whose options (space-separated) the waypoint's JVM gets after the mesh's own, where
     * they win: {@code -Dwisp.waypoint.jvm=-XX:TieredStopAtLevel=4} runs it with C2, as {@code bin/wisp
     * waypoint} does (the mesh's command is C1 only, sized for the agents); the waypoint benchmark compares both.
     */
    static final String JVM_OPTIONS = "wisp.waypoint.jvm";

    /** {@code command} with {@code options} inserted before its class path (after the JVM's other options). */
    static List<String> withJvmOptions(List<String> command, String options) {
        List<String> out = new java.util.ArrayList<>(command);
        int cp = out.indexOf("-cp");
        if (!options.isBlank() && cp > 0) {
            out.addAll(cp, List.of(options.trim().split("\\s+")));
        }
        return out;
    }

    private void stop(String key) {
        Running r = running.remove(key);
        processes.stopPodProcess(r.process());
        cluster.removePod(r.pod().name());
        regenerate.run();
        log.info("mesh {}: waypoint {} stopped, its Gateway is gone", spec.cluster().name(), key);
    }

    /** A waypoint Gateway as the deployer needs it. */
    record Gateway(String namespace, String name) {}

    /**
     * The waypoint Gateways declared in {@code dir}'s {@code *.yaml} files (not {@code generated}),
     * by "namespace/name". A file that does not parse is skipped: the control plane says why.
     */
    static Map<String, Gateway> gateways(Path dir, String generated) {
        Map<String, Gateway> out = new LinkedHashMap<>();
        Set<Path> files = new TreeSet<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(p -> p.getFileName().toString().endsWith(".yaml") && !p.getFileName().toString().startsWith(
                    ".") && !p.getFileName().toString().equals(generated)).forEach(files::add);
        } catch (IOException e) {
            throw new ClusterException("cannot list " + dir + ": " + e.getMessage(), e);
        }
        for (Path f : files) {
            try (MappingIterator<JsonNode> docs = YAML.readerFor(JsonNode.class).readValues(f.toFile())) {
                while (docs.hasNext()) {
                    JsonNode d = docs.next();
                    if (d != null && isWaypoint(d)) {
                        JsonNode meta = d.path("metadata");
                        Gateway g = new Gateway(meta.path("namespace").asText("default"), meta.path("name").asText());
                        out.putIfAbsent(g.namespace() + "/" + g.name(), g);
                    }
                }
            } catch (IOException | RuntimeException e) {
                log.debug("{} skipped by the waypoint deployer: {}", f, e.toString());
            }
        }
        return out;
    }

    /** A Gateway API {@code Gateway} of a waypoint class with the mesh HBONE listener. */
    static boolean isWaypoint(JsonNode d) {
        if (!d.path("kind").asText().equals("Gateway") || !d.path("apiVersion").asText().startsWith(
                "gateway.networking.k8s.io/") || d.path("metadata").path("name").asText().isEmpty()
                || !CLASSES.contains(d.path("spec").path("gatewayClassName").asText())) {
            return false;
        }
        for (JsonNode l : d.path("spec").path("listeners")) {
            if (l.path("name").asText().equals("mesh") && l.path("port").asInt() == 15008 && l.path("protocol")
                    .asText().equals("HBONE")) {
                return true;
            }
        }
        return false;
    }

    /** Stops the watcher; the mesh stops the waypoints' processes with the other pods'. */
    @Override
    public void close() {
        closed = true;
        Thread t = watcher;
        if (t != null) {
            t.interrupt();
        }
    }
}
