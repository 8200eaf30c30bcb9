package dev.wisp.cli.demo;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.wisp.cli.CaCommand;
import dev.wisp.cli.UserException;
import dev.wisp.local.AddressPlan;
import dev.wisp.local.ClusterException;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.LoopbackForward;
import dev.wisp.local.MeshSpec;
import dev.wisp.local.Prometheus;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code wisp demo}: the whole mesh on this machine, and a story told on the terminal. Builds a
 * 2-node {@link LocalMesh} named {@value #CLUSTER}, starts a server pod on node 2 and two clients on
 * node 1 (one in another namespace), then walks through {@link DemoStory}'s steps and follows the
 * flows until Ctrl-C or {@code --duration}. Ctrl-C anywhere removes everything (a shutdown hook
 * closes the mesh), unless {@code --keep}.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, description = {
        "Run the whole mesh on this machine and watch it work: two nodes (network namespaces), a control plane "
                + "reading YAML, one node agent per node with eBPF capture, a server pod on node 2 and two clients on "
                + "node 1 calling it once a second over HBONE mTLS.",
        "The demo shows the identities, applies a DENY policy from a YAML file and removes it, routes the "
                + "server's calls through an L7 waypoint that sends 20 % to a v2, and prints the metrics. Needs root. Ctrl-C stops it and removes everything it created."})
public final class DemoCommand implements Callable<Integer> {
    static final String CLUSTER = "demo";
    /** The address plan's second octet: underlay 10.170.0.0/24, pods 10.171.i.0/24. */
    static final int BASE = 170;
    static final int PROMETHEUS_PORT = 9090;
    /** The demo's DENY policy (namespace {@code other} may not call {@code app: server}), for tests that replay it. */
    public static final String DENY_POLICY = DemoStory.POLICY;
    /** The control plane's admin port in the underlay, forwarded from the same port of this host's loopback. */
    static final int ADMIN_PORT = 15014;

    @Option(names = "--duration", paramLabel = "DURATION", converter = CaCommand.DurationConverter.class, description = "After the story, follow the flows this long (e.g. 30s, 5m), then clean up and exit 0. Default: until Ctrl-C.")
    Duration duration;

    @Option(names = "--prometheus", description = "Also start Prometheus (Debian's 'prometheus') scraping the agents and the control plane.")
    boolean prometheus;

    /** Hidden: the test suite tells the same story at a faster pace, so its waits for calls are shorter. */
    @Option(names = "--call-interval", hidden = true, paramLabel = "DURATION", converter = CaCommand.DurationConverter.class, description = "Time between two calls of each client (default: 1s).")
    Duration callInterval = Duration.ofSeconds(1);

    @Option(names = "--keep", description = "Leave the mesh running at exit (remove it later with 'wisp cluster down --name demo').")
    boolean keep;

    @Option(names = "--stack", paramLabel = "FAMILIES", description = "The cluster's IP families: ipv4, ipv6 (IPv6 only: "
            + "nodes, pods, Services, the control plane and HBONE on IPv6 addresses) or dual (IPv4 and IPv6 on every "
            + "node, pod and Service). Default: ${DEFAULT-VALUE}.")
    String stack = "ipv4";

    @Option(names = "--work-dir", paramLabel = "DIR", description = "Logs, state and the config dir (default: /tmp/wisp-mesh-demo).")
    Path workDir = Path.of(System.getProperty("java.io.tmpdir"), "wisp-mesh-" + CLUSTER);

    @Spec
    CommandSpec spec;

    /** Set by the shutdown hook: failures after it are the teardown's doing, not errors. */
    private volatile boolean stopping;

    @Override
    public Integer call() throws Exception {
        if (!isRoot()) {
            throw new UserException("wisp demo needs root (network namespaces, cgroups, eBPF): run it as root");
        }
        if (prometheus && !Files.isExecutable(Path.of("/usr/bin/prometheus"))) {
            throw new UserException("--prometheus needs Debian's prometheus: apt-get install -y prometheus "
                    + "(scripts/demo.sh installs it)");
        }
        ClusterSpec.Stack families = stack(stack);
        quietLogs();
        PrintWriter out = spec.commandLine().getOut();
        Story s = new Story(out);
        s.header("Mesh up");
        out.println("Starting a 2-node " + describe(families) + " mesh '" + CLUSTER + "': control plane, one node "
                + "agent per node with eBPF capture…");
        out.flush();
        long t0 = System.nanoTime();
        List<String> wisp = MeshSpec.currentJvmWispCommand();
        // Registered before the mesh exists: Ctrl-C while it starts lets LocalMesh.up finish (other
        // threads run on during shutdown hooks; up removes what it built if it fails), then removes it.
        AtomicReference<LocalMesh> started = new AtomicReference<>();
        CountDownLatch upReturned = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stopping = true;
            if (!keep) {
                out.println();
                out.println("Stopping: removing the mesh…");
                out.flush();
                try {
                    upReturned.await(3, TimeUnit.MINUTES);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                stop(started.get(), out);
            }
        }, "wisp-demo-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        LocalMesh mesh;
        try {
            MeshSpec meshSpec = meshSpec(wisp, workDir, families);
            // A run stopped before its end left the story's files, and the config dir outlives the mesh:
            // a waypoint and a route to v2 in force from the first call made that call fail.
            List<String> stale = removeStoryFiles(meshSpec.configDir());
            if (!stale.isEmpty()) {
                out.println("  removed an earlier run's " + String.join(", ", stale) + " from " + meshSpec.configDir());
            }
            mesh = LocalMesh.up(meshSpec);
            started.set(mesh);
        } catch (ClusterException | IllegalStateException e) {
            if (stopping) {
                return 130;
            }
            Runtime.getRuntime().removeShutdownHook(hook);
            throw new UserException(e.getMessage());
        } finally {
            upReturned.countDown();
        }
        if (stopping) {
            return 130; // the hook removes it
        }
        LoopbackForward page = null;
        // Started now, so that by step 7 it has scraped for a while: its first samples took 5 s of that step.
        Future<Prometheus> prom = prometheus ? startPrometheus(mesh) : CompletableFuture.completedFuture(null);
        try {
            out.printf("  up in %.1f s%n", (System.nanoTime() - t0) / 1e9);
            DemoStory story = new DemoStory(mesh, out);
            story.meshUp();
            // The control plane's admin answers localhost only: forward a port of this host's loopback to it.
            page = LoopbackForward.open(mesh.cluster().underlayNetns(), mesh.controlPlaneAdminAddress(), ADMIN_PORT);
            out.println("  live mesh page:       http://127.0.0.1:" + page.port() + "/ui  (open it in a browser)");
            out.println("  flows as JSON lines:  curl -sN 'http://127.0.0.1:" + page.port()
                    + "/api/v1/flows?since=0&follow=true'");
            story.startApps(wisp, callInterval);
            s.header("Traffic over mTLS");
            story.traffic();
            s.header("UDP through WireGuard");
            story.wireGuard();
            s.header("A DENY policy from YAML");
            story.deny();
            s.header("Policy removed");
            story.restore();
            s.header("HTTP routing by a waypoint");
            story.waypoint();
            s.header("Metrics");
            story.metrics(Optional.ofNullable(awaitPrometheus(prom)));
            out.println();
            out.println("The mesh keeps running" + (duration == null
                    ? "; Ctrl-C stops it and removes everything."
                    : " for " + CaCommand.DurationConverter.format(duration) + "."));
            out.println("In another root shell: wisp flows --follow   (node2's new connections follow here)");
            out.flush();
            long end = duration == null ? Long.MAX_VALUE : System.nanoTime() + duration.toNanos();
            story.follow(() -> System.nanoTime() < end);
            return 0;
        } catch (DemoStory.DemoException | ClusterException | IOException | IllegalStateException e) {
            if (stopping) {
                return 130;
            }
            if (e instanceof DemoStory.DemoException) {
                firstWarnings(mesh, out);
            }
            throw new UserException(e.getMessage());
        } finally {
            closeQuietly(page);
            // Prometheus may still be starting when a step failed: let it finish, so the mesh stops it.
            settle(prom);
            if (!stopping) {
                Runtime.getRuntime().removeShutdownHook(hook);
                if (keep) {
                    out.println("Left running: see 'wisp flows'; remove with 'wisp cluster down --name demo'.");
                } else {
                    out.println("Stopping: removing the mesh…");
                    out.flush();
                    stop(mesh, out);
                }
                out.flush();
            }
        }
    }

    /** Starts Prometheus on its own thread while the story goes on. */
    private static Future<Prometheus> startPrometheus(LocalMesh mesh) {
        FutureTask<Prometheus> start = new FutureTask<>(() -> mesh.startPrometheus(PROMETHEUS_PORT));
        Thread.ofVirtual().name("wisp-demo-prometheus").start(start);
        return start;
    }

    /**
     * Waits (a minute at most) for Prometheus's start to end, whatever its outcome (a failure is the
     * story's to report): then the mesh stops what it started.
     */
    private static void settle(Future<Prometheus> prom) {
        try {
            prom.get(1, TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            // reported by the story's Metrics step, or beyond waiting for
        }
    }

    /** What {@link #startPrometheus} started (null when not asked for), or its failure as the story's. */
    private static Prometheus awaitPrometheus(Future<Prometheus> prom)
            throws IOException {
        try {
            return prom.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while Prometheus started", e);
        } catch (ExecutionException e) {
            switch (e.getCause()) {
                case IOException io -> throw io;
                case RuntimeException r -> throw r;
                default -> throw new IOException(e.getCause());
            }
        }
    }

    /** When a step timed out: the first distinct warnings of the control plane and each agent. */
    private static void firstWarnings(LocalMesh mesh, PrintWriter out) {
        List<String> processes = new ArrayList<>(List.of(LocalMesh.CONTROL_PLANE));
        mesh.cluster().nodes().forEach(n -> processes.add(n.name()));
        out.println("What the mesh warned of first:");
        for (String p : processes) {
            List<String> lines = mesh.warnings(p, 0, 3);
            out.println("  " + p + ": " + (lines.isEmpty() ? "no warning" : ""));
            lines.forEach(l -> out.println("    " + l));
        }
        out.flush();
    }

    /**
     * The demo's mesh: client and curl (namespace other) on node 1, server (v1) and server-v2 on node 2;
     * the Services server (app: server), server-v1 and server-v2 (by version) on port 80; the agents'
     * DNS proxy on, so the pods call the Service by name (other names go to the underlay's port 53,
     * where nothing answers: the demo needs none).
     */
    static MeshSpec meshSpec(List<String> wisp, Path workDir, ClusterSpec.Stack stack) {
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(BASE).stack(stack).hostLink(true).pod(
                DemoStory.CLIENT,
                "default", "client", 0).pod(DemoStory.CURL, "other", "curl", 0).pod(new ClusterSpec.PodSpec(
                        DemoStory.SERVER, "default", "server", 1, Map.of("app", "server", "version", "v1")))
                .pod(new ClusterSpec.PodSpec(DemoStory.SERVER_V2, "default", "server", 1, Map.of("app",
                        "server-v2", "version", "v2")))
                .build();
        MeshSpec.Builder b = MeshSpec.builder(cluster).wispCommand(wisp).workDir(workDir).agentArg("--dns-upstream")
                .agentArg(AddressPlan.hostPort(AddressPlan.of(cluster).underlay(), 53));
        String[][] services = {{"server", "app", "server"}, {"server-v1", "version", "v1"}, {"server-v2", "version",
                "v2"}};
        for (int i = 0; i < services.length; i++) {
            b.service(new MeshSpec.ServiceSpec(services[i][0], "default", Map.of(services[i][1], services[i][2]),
                    LocalMesh.serviceAddress(cluster, i + 1), 80, 8080));
        }
        return b.build();
    }

    /** {@code --stack}'s value as the cluster's families. */
    static ClusterSpec.Stack stack(String text) {
        return switch (text.toLowerCase(java.util.Locale.ROOT)) {
            case "ipv4" -> ClusterSpec.Stack.IPV4;
            case "ipv6" -> ClusterSpec.Stack.IPV6;
            case "dual" -> ClusterSpec.Stack.DUAL;
            default -> throw UserException.invalid("--stack: '" + text + "' is not ipv4, ipv6 or dual");
        };
    }

    private static String describe(ClusterSpec.Stack stack) {
        return switch (stack) {
            case IPV4 -> "IPv4";
            case IPV6 -> "IPv6-only";
            case DUAL -> "dual-stack";
        };
    }

    private static void closeQuietly(LoopbackForward f) {
        if (f != null) {
            try {
                f.close();
            } catch (IOException e) {
                // The port is released with the process anyway.
            }
        }
    }

    /** Closes {@code mesh}, or removes the cluster by name when it was still starting. */
    private static void stop(LocalMesh mesh, PrintWriter out) {
        try {
            if (mesh != null) {
                mesh.close();
                removeStoryFiles(mesh.configDir());
            } else {
                LocalMesh.down(CLUSTER);
            }
            out.println("Removed: processes, namespaces, links, cgroups, BPF pins.");
        } catch (RuntimeException e) {
            out.println("error: " + e.getMessage() + " (run 'wisp cluster down --name " + CLUSTER + "')");
        }
        out.flush();
    }

    /**
     * Removes the files the story writes into {@code configDir} (the DENY policy, the waypoint and its
     * route), so that a run starts, and ends, without them; the operator's other files stay.
     *
     * @return the names of those that were there
     */
    static List<String> removeStoryFiles(Path configDir) {
        List<String> removed = new ArrayList<>();
        for (String name : List.of(DemoStory.POLICY_FILE, DemoWaypoint.WAYPOINT_FILE, DemoWaypoint.ROUTE_FILE)) {
            try {
                if (Files.deleteIfExists(configDir.resolve(name))) {
                    removed.add(name);
                }
            } catch (IOException e) {
                throw new ClusterException("cannot remove " + configDir.resolve(name) + ": " + e.getMessage(), e);
            }
        }
        return removed;
    }

    /** The mesh's own progress logs would interleave with the story; warnings and errors still show. */
    private static void quietLogs() {
        if (System.getenv("WISP_LOG") == null) {
            ((Logger) LoggerFactory.getLogger("dev.wisp")).setLevel(Level.WARN);
        }
    }

    static boolean isRoot() {
        return dev.wisp.cli.flows.FlowsCommand.isRoot();
    }

    /** Numbered step headers, 80 columns wide. */
    static final class Story {
        static final int STEPS = 7;
        private final PrintWriter out;
        private int step;

        Story(PrintWriter out) {
            this.out = out;
        }

        void header(String title) {
            step++;
            String h = "== " + step + "/" + STEPS + "  " + title + " ";
            out.println();
            out.println(h + "=".repeat(Math.max(3, 80 - h.length())));
            out.flush();
        }
    }
}
