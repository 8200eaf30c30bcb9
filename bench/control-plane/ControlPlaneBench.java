import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.node.xds.WorkloadXdsClient;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Benchmark (not a test) of the control plane: `wisp control-plane` runs in its own JVM on a
 * generated model; N simulated agents (the agent's real WorkloadXdsClient, one gRPC connection
 * each) connect over loopback; then a mesh-wide AuthorizationPolicy is changed M times and the
 * time from the file's save to the arrival of the last agent's ACK at the control plane is measured
 * (the control plane stamps each ACK as it processes it and shows, in /api/v1/status, how many agents
 * ACKed a type's latest generation and when the last one did), beside the time the last agent
 * received the change, with the control plane's CPU time (/proc/PID/stat) and heap after a full GC
 * (jcmd).
 */
public class ControlPlaneBench {
    static int agents = 1000, pods = 10_000, services = 1000, changes = 20, warmup = 2, namespaces = 100;
    static String java, classpath;
    static Path out;

    public static void main(String[] args) throws Exception {
        for (int i = 0; i < args.length; i += 2) {
            switch (args[i]) {
                case "--agents" -> agents = Integer.parseInt(args[i + 1]);
                case "--pods" -> pods = Integer.parseInt(args[i + 1]);
                case "--services" -> services = Integer.parseInt(args[i + 1]);
                case "--changes" -> changes = Integer.parseInt(args[i + 1]);
                case "--java" -> java = args[i + 1];
                case "--classpath" -> classpath = args[i + 1];
                case "--out" -> out = Path.of(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        String loadAtStart = loadAverage();
        Path work = Files.createTempDirectory("wisp-cp-bench");
        Process cp = null;
        List<WorkloadXdsClient> clients = new ArrayList<>();
        List<ManagedChannel> channels = new ArrayList<>();
        try {
            Path config = Files.createDirectories(work.resolve("config"));
            Path state = work.resolve("state");
            writeModel(config);
            writePolicy(config, 9999);
            int xds = freePort(), admin = freePort();
            List<String> command = new ArrayList<>(List.of(java, "-Xmx2g", "--enable-native-access=ALL-UNNAMED"));
            // Extra options for the control plane's JVM (a profiler, a logging configuration).
            String extra = System.getenv().getOrDefault("CP_JAVA_OPTS", "").strip();
            if (!extra.isEmpty()) {
                command.addAll(List.of(extra.split("\\s+")));
            }
            command.addAll(List.of("-cp", classpath, "dev.wisp.cli.Wisp", "--log-level", "warn", "control-plane", "--config-dir", config.toString(),
                    "--state-dir", state.toString(), "--listen", "127.0.0.1:" + xds, "--admin", "127.0.0.1:" + admin));
            cp = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(
                    Path.of(System.getenv().getOrDefault("CP_LOG", work.resolve("control-plane.log").toString()))
                            .toFile()).start();
            long pid = cp.pid();
            long t0 = System.nanoTime();
            waitReady(admin, cp);
            double startSeconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf("control plane ready in %.1f s (pid %d)%n", startSeconds, pid);

            // Connect in batches: each agent's first Workload response is several MB.
            // Agents verify the control plane's TLS identity against the CA bundle it wrote.
            TrustBundle bundle = TrustBundle.read("cluster.local", state.resolve("ca/bundle.pem"));
            List<BenchState> states = new ArrayList<>();
            long c0 = System.nanoTime();
            long cpuBeforeSync = cpuTicks(pid);
            int batch = 50;
            for (int from = 0; from < agents; from += batch) {
                CountDownLatch synced = new CountDownLatch(Math.min(batch, agents - from));
                for (int i = from; i < Math.min(from + batch, agents); i++) {
                    String node = "node-" + i;
                    String token = Files.readString(state.resolve("node-credentials/" + node + ".token")).trim();
                    ManagedChannel ch = ControlPlaneClient.channel("127.0.0.1", xds, () -> bundle);
                    channels.add(ch);
                    BenchState s = new BenchState(synced);
                    states.add(s);
                    WorkloadXdsClient c = WorkloadXdsClient.create(ch, node, () -> token, s);
                    clients.add(c);
                    c.start();
                }
                if (!synced.await(180, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("agents " + from + ".. did not sync in 180 s");
                }
                System.out.printf("%d agents synced after %.1f s%n", Math.min(from + batch, agents),
                        (System.nanoTime() - c0) / 1e9);
            }
            double syncSeconds = (System.nanoTime() - c0) / 1e9;
            double syncCpu = (cpuTicks(pid) - cpuBeforeSync) / 100.0;
            long workloadsHeld = states.getFirst().workloads.get();
            System.out.printf("%d agents synced in %.1f s (%d workloads each)%n", agents, syncSeconds, workloadsHeld);
            long heapIdle = heapAfterGc(pid);

            List<Double> latencies = new ArrayList<>();
            List<Double> received = new ArrayList<>();
            List<Double> cpuPerChange = new ArrayList<>();
            for (int k = 0; k < warmup + changes; k++) {
                int port = 10_000 + k;
                CountDownLatch acked = new CountDownLatch(agents);
                AtomicLong last = new AtomicLong();
                for (BenchState s : states) {
                    s.expect(port, acked, last);
                }
                long cpu0 = cpuTicks(pid);
                Instant saved = Instant.now();
                long start = System.nanoTime();
                writePolicy(config, port);
                if (!acked.await(60, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("change " + k + ": only " + (agents - acked.getCount())
                            + " agents applied it in 60 s");
                }
                double receivedMs = (last.get() - start) / 1e6;
                Instant lastAck = lastAckAtControlPlane(admin);
                double ms = Duration.between(saved, lastAck).toNanos() / 1e6;
                // Let the control plane finish its bookkeeping before reading its CPU time.
                Thread.sleep(200);
                double cpuMs = (cpuTicks(pid) - cpu0) * 10.0;
                if (k >= warmup) {
                    latencies.add(ms);
                    received.add(receivedMs);
                    cpuPerChange.add(cpuMs);
                }
                System.out.printf("change %2d: last agent received it after %.1f ms, its ACK reached the control plane"
                        + " after %.1f ms, control plane CPU %.0f ms%n", k, receivedMs, ms, cpuMs);
            }
            long heapAfter = heapAfterGc(pid);
            String metrics = get(admin, "/metrics");
            writeResults(startSeconds, syncSeconds, syncCpu, workloadsHeld, heapIdle, heapAfter, latencies,
                    received, cpuPerChange, metrics, loadAtStart);
        } finally {
            clients.forEach(WorkloadXdsClient::close);
            for (ManagedChannel ch : channels) {
                ch.shutdownNow();
            }
            if (cp != null) {
                cp.destroy();
                cp.waitFor(10, TimeUnit.SECONDS);
            }
            try (Stream<Path> s = Files.walk(work)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /** Counts what the agent receives; keeps nothing (1,000 agents × 10,000 workloads would not fit). */
    static final class BenchState implements StateUpdates {
        final AtomicInteger types = new AtomicInteger();
        final AtomicLong workloads = new AtomicLong();
        final CountDownLatch synced;
        volatile int expected = -1;
        volatile CountDownLatch acked;
        volatile AtomicLong last;
        int seen = -1;

        BenchState(CountDownLatch synced) {
            this.synced = synced;
        }

        void expect(int port, CountDownLatch acked, AtomicLong last) {
            this.last = last;
            this.acked = acked;
            this.expected = port;
        }

        @Override
        public void apply(String typeUrl, List<Resource> resources, List<String> removed) {
            if (typeUrl.equals(WORKLOAD)) {
                workloads.addAndGet(resources.size() - removed.size());
            }
            if (typeUrl.equals(AUTHORIZATION)) {
                for (Resource r : resources) {
                    if (r.getName().equals("istio-system/bench")) {
                        int port = r.getAuthorization().getGroups(0).getRules(0).getMatches(0).getDestinationPorts(0);
                        if (port == expected && seen != port) {
                            seen = port;
                            long now = System.nanoTime();
                            last.accumulateAndGet(now, Math::max);
                            acked.countDown();
                        }
                    }
                }
            }
            if (types.incrementAndGet() == TYPES.size()) {
                synced.countDown();
            }
        }

        @Override
        public Map<String, String> versions(String typeUrl) {
            return Map.of();
        }
    }

    static void writeModel(Path config) throws IOException {
        StringBuilder nodes = new StringBuilder();
        for (int i = 0; i < agents; i++) {
            nodes.append("apiVersion: v1\nkind: Node\nmetadata: {name: node-").append(i)
                    .append("}\nstatus: {addresses: [{type: InternalIP, address: 192.168.").append(i / 256).append('.')
                    .append(i % 256).append("}]}\n---\n");
        }
        Files.writeString(config.resolve("nodes.yaml"), nodes);
        StringBuilder svc = new StringBuilder();
        for (int j = 0; j < services; j++) {
            svc.append("apiVersion: v1\nkind: Service\nmetadata: {name: svc-").append(j).append(", namespace: ns-")
                    .append(j % namespaces).append("}\nspec: {selector: {app: svc-").append(j)
                    .append("}, clusterIP: 10.96.").append(j / 256).append('.').append(j % 256)
                    .append(", ports: [{port: 80, targetPort: 8080}]}\n---\n");
        }
        Files.writeString(config.resolve("services.yaml"), svc);
        StringBuilder pod = new StringBuilder();
        for (int i = 0; i < pods; i++) {
            int s = i % services;
            pod.append("apiVersion: v1\nkind: Pod\nmetadata: {name: pod-").append(i).append(", namespace: ns-")
                    .append(s % namespaces).append(", labels: {app: svc-").append(s).append("}}\nspec: {nodeName: node-")
                    .append(i % agents).append(", serviceAccountName: sa-").append(s).append("}\nstatus: {podIP: 10.1.")
                    .append(i / 256).append('.').append(i % 256).append("}\n---\n");
        }
        Files.writeString(config.resolve("pods.yaml"), pod);
        StringBuilder pol = new StringBuilder();
        for (int n = 0; n < namespaces; n++) {
            pol.append("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-mesh, namespace: ns-")
                    .append(n).append("}\nspec: {rules: [{from: [{source: {principals: [\"cluster.local/*\"]}}]}]}\n---\n");
        }
        Files.writeString(config.resolve("policies.yaml"), pol);
    }

    /** The changed object: a mesh-wide DENY on one port, so that every agent must receive it. */
    static void writePolicy(Path config, int port) throws IOException {
        Path tmp = config.resolve(".bench.tmp");
        Files.writeString(tmp, """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: bench, namespace: istio-system}
                spec: {action: DENY, rules: [{to: [{operation: {ports: ["%d"]}}]}]}
                """.formatted(port));
        Files.move(tmp, config.resolve("bench.yaml"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    static void waitReady(int admin, Process cp) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while (System.nanoTime() < deadline) {
            if (!cp.isAlive()) {
                throw new IllegalStateException("control plane exited with " + cp.exitValue());
            }
            try {
                HttpResponse<String> r = HttpClient.newHttpClient().send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + admin + "/healthz/ready")).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    return;
                }
            } catch (IOException e) {
                // not listening yet
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("control plane not ready in 180 s");
    }

    /**
     * When the last agent's ACK of the live generation's authorizations reached the control plane, as
     * the control plane stamped it; waits (60 s at most) until every agent's ACK is counted there.
     */
    static Instant lastAckAtControlPlane(int admin) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        JsonNode status = null;
        while (System.nanoTime() < deadline) {
            status = new ObjectMapper().readTree(get(admin, "/api/v1/status"));
            for (JsonNode a : status.path("acks")) {
                if (a.path("type").asText().equals(StateUpdates.AUTHORIZATION)
                        && a.path("generation").asLong() == status.path("generation").asLong()
                        && a.path("agents").asInt() >= agents) {
                    return Instant.parse(a.path("lastAt").asText());
                }
            }
            Thread.sleep(20);
        }
        throw new IllegalStateException("the control plane did not count " + agents + " ACKs in 60 s: " + status
                .path("acks"));
    }

    static String get(int admin, String path) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + admin + path)).build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }

    static String loadAverage() throws IOException {
        String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
        return f[0] + " " + f[1] + " " + f[2];
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** utime + stime of a process, in clock ticks (100 Hz). */
    static long cpuTicks(long pid) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }

    /** Heap in use after a full GC, in bytes, via jcmd of the same JDK. */
    static long heapAfterGc(long pid) throws Exception {
        Path jcmd = Path.of(java).resolveSibling("jcmd");
        new ProcessBuilder(jcmd.toString(), Long.toString(pid), "GC.run").redirectErrorStream(true).start().waitFor();
        Process p = new ProcessBuilder(jcmd.toString(), Long.toString(pid), "GC.heap_info").redirectErrorStream(true).start();
        String info = new String(p.getInputStream().readAllBytes());
        p.waitFor();
        Matcher m = Pattern.compile("used (\\d+)K").matcher(info);
        if (!m.find()) {
            throw new IllegalStateException("cannot read heap use from jcmd: " + info);
        }
        return Long.parseLong(m.group(1)) * 1024;
    }

    static double percentile(List<Double> values, double p) {
        List<Double> sorted = values.stream().sorted().toList();
        int idx = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(idx, sorted.size() - 1)));
    }

    static void writeResults(double startSeconds, double syncSeconds, double syncCpu, long workloadsHeld, long heapIdle,
            long heapAfter, List<Double> latencies, List<Double> received, List<Double> cpu, String metrics,
            String loadAtStart) throws IOException {
        double cpuMean = cpu.stream().mapToDouble(d -> d).average().orElse(0);
        String latencyMetric = metrics.lines().filter(l -> l.startsWith("wisp_xds_push_latency_seconds_max")
                || l.startsWith("wisp_xds_push_latency_seconds_count")).reduce("", (a, b) -> a + "    " + b + "\n");
        String text = """
                Wisp control plane benchmark (bench/control-plane/run.sh)
                date: %s
                machine: %d cores (shared with other workloads), %s
                load average (1, 5, 15 min) at start: %s, at end: %s
                model: %d nodes, %d pods (workloads), %d services, %d namespaces, %d namespace ALLOW policies
                agents: %d simulated agents, each the node agent's real WorkloadXdsClient with its own gRPC
                        connection over loopback, in one JVM (-Xmx4g); the control plane is `wisp control-plane`
                        in its own JVM (-Xmx2g); the agents' state is counted, not kept
                change: a mesh-wide (root namespace) DENY AuthorizationPolicy, its port changed and the file saved
                        (rename into the watched directory); every agent must receive it; %d changes measured after
                        %d warm-up changes

                start to ready (read, validate, translate the model): %.1f s
                initial sync of all agents (batches of 50): %.1f s, control plane CPU %.1f s; %d workloads per agent

                time from file save to the arrival of the last agent's ACK at the control plane (ms),
                as the control plane stamped it [includes the 100 ms watch debounce]:
                    p50 %.1f   p99 %.1f   min %.1f   max %.1f
                    all: %s
                time from file save to the last agent's receipt of the change (ms), on the agents' side:
                    p50 %.1f   p99 %.1f   min %.1f   max %.1f
                control plane CPU per change (all %d pushes): mean %.0f ms  ->  %.2f ms CPU per push (per agent)
                control plane heap after full GC: %.1f MiB with all agents connected (before the changes),
                                                  %.1f MiB after the changes
                control plane's own push latency metric (publish -> ACK, all pushes incl. initial sync):
                %s
                peer: none measured. No other workload-xDS control plane (istiod) can be installed on this machine,
                      so there is no ratio; the issue's budget is 1 s from save to enforcement: p99 / 1 s = %.2f
                """.formatted(Instant.now(), Runtime.getRuntime().availableProcessors(), System.getProperty("os.name")
                + " " + System.getProperty("os.version"), loadAtStart, loadAverage(), agents, pods, services, namespaces, namespaces, agents,
                changes, warmup, startSeconds, syncSeconds, syncCpu, workloadsHeld, percentile(latencies, 50),
                percentile(latencies, 99), percentile(latencies, 0), latencies.stream().mapToDouble(d -> d).max()
                        .orElse(0), latencies.stream().map(d -> String.format("%.0f", d)).toList(),
                percentile(received, 50), percentile(received, 99), percentile(received, 0), percentile(received, 100),
                agents, cpuMean,
                cpuMean / agents, heapIdle / 1048576.0, heapAfter / 1048576.0, latencyMetric.stripTrailing(),
                percentile(latencies, 99) / 1000.0);
        Files.createDirectories(out.getParent());
        Files.writeString(out, text);
        System.out.print(text);
    }
}
