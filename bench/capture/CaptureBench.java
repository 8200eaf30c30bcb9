import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Capture benchmark (not a test; run by bench/capture/run.sh as root): an unmodified client in pod
 * "client" (node 1) talking to a server in pod "server" (node 2) of a local mesh built by
 * {@link LocalMesh} exactly as {@code wisp cluster up} builds it: the control plane and one real
 * {@code wisp node --capture} agent per node, child JVMs with the local mesh's options.
 *
 *   mesh    both pods enrolled: the client's connect is redirected by the eBPF hooks to node 1's
 *           agent (15001), carried over HBONE (mTLS, HTTP/2 CONNECT) to node 2's agent, which
 *           connects to the server
 *   direct  both pod files removed, so the agents un-enroll the pods: the same client, server and
 *           namespaces, plain TCP across the nodes
 *
 * Rounds alternate the modes (order rotated); each figure is the median over rounds. Modes:
 * {@code java CaptureBench.java OUT CONNECTIONS REQUESTS ROUNDS} (the benchmark),
 * {@code ... server PORT} and {@code ... setup|request HOST PORT N} (the programs in the pods).
 */
public class CaptureBench {
    static final int PAYLOAD = 64;
    static final int PORT = 8080;

    public static void main(String[] a) throws Exception {
        switch (a[0]) {
            case "server" -> server(Integer.parseInt(a[1]));
            case "setup", "request" -> client(a[0], new InetSocketAddress(a[1], Integer.parseInt(a[2])),
                    Integer.parseInt(a[3]));
            default -> bench(Path.of(a[0]), Integer.parseInt(a[1]), Integer.parseInt(a[2]), Integer.parseInt(a[3]));
        }
    }

    // ---- the benchmark

    static void bench(Path out, int connections, int requests, int rounds) throws Exception {
        String load0 = loadAverage();
        ClusterSpec cluster = ClusterSpec.builder("capbench").nodes(2).base(238).pod("client", "default", "client", 0)
                .pod("server", "default", "server", 1).build();
        Path work = Files.createTempDirectory("wisp-capture-bench");
        Map<String, List<Map<String, Double>>> byMode = new TreeMap<>();
        Map<String, Long> viaAgents = new TreeMap<>();
        String agentCommand;
        try (LocalMesh mesh = LocalMesh.up(MeshSpec.builder(cluster).workDir(work).build()).closeOnShutdown()) {
            agentCommand = String.join(" ", mesh.spec().wispCommand()).replaceAll("-cp \\S+", "-cp …");
            LocalCluster.Pod client = mesh.pod("client");
            LocalCluster.Pod server = mesh.pod("server");
            Process srv = mesh.startInPod("server", java("server", Integer.toString(PORT)));
            BufferedReader srvOut = new BufferedReader(new InputStreamReader(srv.getInputStream(), StandardCharsets.UTF_8));
            String first = srvOut.readLine();
            if (!"listening".equals(first)) {
                throw new IllegalStateException("server did not start: " + first);
            }
            Thread.ofPlatform().daemon().start(() -> drain(srvOut));
            for (int round = 0; round < rounds; round++) {
                for (int k = 0; k < 2; k++) {
                    boolean captured = (round + k) % 2 == 0;
                    String mode = captured ? "mesh (eBPF capture + 2 agents, HBONE mTLS)" : "direct (no capture)";
                    enroll(mesh, List.of(client, server), captured);
                    long opened0 = openedAtDestination(mesh);
                    Map<String, Double> r = new TreeMap<>();
                    r.putAll(run(mesh, "setup", server.ip(), connections, "cpu_agents_us_per_connection"));
                    r.putAll(run(mesh, "request", server.ip(), requests, "cpu_agents_us_per_request"));
                    viaAgents.merge(mode, openedAtDestination(mesh) - opened0, Long::sum);
                    byMode.computeIfAbsent(mode, x -> new ArrayList<>()).add(r);
                    System.err.println("round " + round + " " + mode + ": " + r);
                }
            }
            enroll(mesh, List.of(client, server), true);
            srv.destroy();
        }
        // The mesh is down; its logs are only kept when the run failed (an exception skips this).
        try (var files = Files.walk(work)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        }
        String report = report(byMode, viaAgents, connections, requests, rounds, load0, agentCommand);
        Files.writeString(out, report);
        System.out.print(report);
    }

    /** Writes or removes the pods' files and waits until each node's agent logged the change. */
    static void enroll(LocalMesh mesh, List<LocalCluster.Pod> pods, boolean on) throws Exception {
        for (LocalCluster.Pod p : pods) {
            String node = p.node().name();
            String line = on ? "enrolled pod " + p.name() + " (" : "removed pod " + p.name() + " from capture";
            if (on == enrolledNow(mesh, p)) {
                continue;
            }
            int before = count(mesh.log(node), line);
            if (on) {
                mesh.cluster().writePodFile(p, mesh.podsDir(node));
            } else {
                mesh.cluster().deletePodFile(p, mesh.podsDir(node));
            }
            waitFor(() -> count(mesh.log(node), line) > before, "agent of " + node + ": '" + line + "'");
        }
    }

    /** Whether the pod's file is present (it was enrolled and not removed since). */
    static boolean enrolledNow(LocalMesh mesh, LocalCluster.Pod p) {
        return Files.exists(mesh.podsDir(p.node().name()).resolve(p.name() + ".json"));
    }

    static int count(String text, String what) {
        int n = 0;
        for (int i = text.indexOf(what); i >= 0; i = text.indexOf(what, i + 1)) {
            n++;
        }
        return n;
    }

    static void waitFor(Supplier<Boolean> done, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!done.get()) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no " + what + " within 60 s");
            }
            Thread.sleep(50);
        }
    }

    /** One client process in the client pod; its key=value lines plus the agents' CPU per unit. */
    static Map<String, Double> run(LocalMesh mesh, String what, String host, int n, String agentsKey)
            throws Exception {
        long cpu0 = agentsCpuMicros(mesh);
        Process p = mesh.startInPod("client", java(what, host, Integer.toString(PORT), Integer.toString(n)));
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(600, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException(what + " client failed: " + text);
        }
        long cpu1 = agentsCpuMicros(mesh);
        Map<String, Double> out = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0 && line.substring(0, eq).matches("[a-z0-9_]+")) {
                out.put(line.substring(0, eq), Double.parseDouble(line.substring(eq + 1)));
            }
        }
        // The client's own warm-up (a fifth of n) went through the agents too.
        out.put(agentsKey, (cpu1 - cpu0) / (n * 1.2));
        return out;
    }

    /** utime+stime of both agents' processes and their children, microseconds. */
    static long agentsCpuMicros(LocalMesh mesh) throws IOException {
        long ticks = 0;
        for (String node : List.of("node1", "node2")) {
            ProcessHandle h = mesh.agentProcess(node).orElseThrow().toHandle();
            List<ProcessHandle> all = new ArrayList<>(List.of(h));
            h.descendants().forEach(all::add);
            for (ProcessHandle x : all) {
                try {
                    ticks += cpuTicks(x.pid());
                } catch (IOException e) {
                    // exited meanwhile
                }
            }
        }
        return ticks * 10_000;
    }

    static long cpuTicks(long pid) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }

    /** Connections node 2's agent opened to a local workload, from its metrics (proves the path). */
    static long openedAtDestination(LocalMesh mesh) throws Exception {
        String text = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(mesh.metricsUrl("node2")))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
        double sum = 0;
        for (String line : text.split("\n")) {
            if (line.startsWith("istio_tcp_connections_opened_total") && line.contains("reporter=\"destination\"")) {
                sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return (long) sum;
    }

    static List<String> java(String... args) {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "-Xmx64m", "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"),
                Path.of("bench/capture/CaptureBench.java").toAbsolutePath().toString()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    static void drain(BufferedReader r) {
        try {
            while (r.readLine() != null) {
                // discard
            }
        } catch (IOException e) {
            // process gone
        }
    }

    static String loadAverage() throws IOException {
        String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
        return f[0] + " " + f[1] + " " + f[2];
    }

    static double median(List<Map<String, Double>> runs, String key) {
        double[] v = runs.stream().mapToDouble(m -> m.getOrDefault(key, Double.NaN)).sorted().toArray();
        return v[v.length / 2];
    }

    static String report(Map<String, List<Map<String, Double>>> byMode, Map<String, Long> viaAgents,
            int connections, int requests, int rounds, String load0, String agentCommand) throws IOException {
        StringBuilder sb = new StringBuilder();
        sb.append("Capture benchmark (bench/capture/run.sh): connection setup and request latency through the real agents, ")
                .append(Instant.now()).append('\n');
        sb.append("Conditions: ").append(Runtime.getRuntime().availableProcessors())
                .append(" cores shared with other work; kernel ").append(System.getProperty("os.version"))
                .append("; load average at start ").append(load0).append(", at end ")
                .append(loadAverage()).append('\n')
                .append("mesh: LocalMesh (as `wisp cluster up`): 2 node netns, pod \"client\" on node1, pod \"server\" on node2\n")
                .append("      (netns + cgroup v2 each), the control plane and one `wisp node --capture` agent per node:\n")
                .append("      ").append(agentCommand).append(" node ... --workers 1 --capture ...\n")
                .append("mesh mode: client connect -> eBPF connect4 redirect -> node1 agent :15001 -> HBONE (TLS 1.3 mTLS, HTTP/2\n")
                .append("      CONNECT, pooled) -> node2 agent :15008 -> server; direct mode: both pod files removed (agents\n")
                .append("      un-enroll the pods), plain TCP over the same namespaces and veths.\n")
                .append("Payload 64 B each way. setup = connect + first 64 B round trip + close, ").append(connections)
                .append(" sequential connections; request = ").append(requests)
                .append(" sequential round trips on one connection; each after a warm-up of a fifth as many.\n")
                .append("Median of ").append(rounds).append(" rounds (mode order rotated each round).\n")
                .append("Connections node2's agent opened to the server per mode, all rounds incl. warm-up (proves the path): ")
                .append(viaAgents).append("\n\n");
        String[] keys = {"setup_p50_us", "setup_p99_us", "setup_mean_us", "request_p50_us", "request_p99_us",
                "cpu_client_us_per_connection", "cpu_agents_us_per_connection", "cpu_agents_us_per_request"};
        String[] heads = {"setup p50", "setup p99", "setup mean", "req p50", "req p99", "client/conn", "agents/conn",
                "agents/req"};
        sb.append(String.format("%-44s", "mode"));
        for (String h : heads) {
            sb.append(String.format("%12s", h));
        }
        sb.append('\n');
        for (var e : byMode.entrySet()) {
            sb.append(String.format("%-44s", e.getKey()));
            for (String k : keys) {
                sb.append(String.format("%12.1f", median(e.getValue(), k)));
            }
            sb.append('\n');
        }
        sb.append("(microseconds: latency of setup and of a request; CPU per connection of the client and of the\n")
                .append(" two agents, and the agents' CPU per request)\n");
        List<Map<String, Double>> mesh = byMode.get("mesh (eBPF capture + 2 agents, HBONE mTLS)");
        List<Map<String, Double>> direct = byMode.get("direct (no capture)");
        sb.append("\nRatios mesh/direct (medians, same run): setup p50 ")
                .append(String.format("%.2f", median(mesh, "setup_p50_us") / median(direct, "setup_p50_us")))
                .append(", setup p99 ")
                .append(String.format("%.2f", median(mesh, "setup_p99_us") / median(direct, "setup_p99_us")))
                .append(", request p50 ")
                .append(String.format("%.2f", median(mesh, "request_p50_us") / median(direct, "request_p50_us")))
                .append(", request p99 ")
                .append(String.format("%.2f", median(mesh, "request_p99_us") / median(direct, "request_p99_us")))
                .append('\n');
        sb.append("\nNotes: client CPU is the client process's utime+stime over its measured loop (10 ms ticks, coarse);\n")
                .append("agents CPU is both agent processes' utime+stime over the client process's life (warm-up included,\n")
                .append("divided by 1.2 n), so in direct mode it is the agents' idle work. The agents are the local mesh's\n")
                .append("JVMs (C1 only, small heaps), as every `wisp cluster` runs them, not tuned for speed.\n")
                .append("The previous version of this benchmark compared eBPF redirect with iptables REDIRECT into a\n")
                .append("stand-in relay; the real agent listens in the node's namespace and reads the original destination\n")
                .append("from the eBPF map, which a pod-namespace iptables REDIRECT cannot reach, so that peer is gone.\n");
        return sb.toString();
    }

    // ---- the programs in the pods

    static void server(int port) throws IOException {
        ServerSocket ss = new ServerSocket();
        ss.setReuseAddress(true);
        ss.bind(new InetSocketAddress(port), 512);
        System.out.println("listening");
        System.out.flush();
        while (true) {
            Socket s = ss.accept();
            Thread.ofPlatform().daemon().start(() -> {
                try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                    s.setTcpNoDelay(true);
                    byte[] buf = new byte[PAYLOAD];
                    while (in.readNBytes(buf, 0, PAYLOAD) == PAYLOAD) {
                        out.write(buf);
                    }
                } catch (IOException e) {
                    // the client went away mid-request: nothing to serve
                }
            });
        }
    }

    /** Prints NAME_p50_us, NAME_p99_us, NAME_mean_us, and for setup cpu_client_us_per_connection. */
    static void client(String what, InetSocketAddress target, int n) throws Exception {
        byte[] req = new byte[PAYLOAD];
        byte[] resp = new byte[PAYLOAD];
        long[] lat = new long[n];
        if (what.equals("setup")) {
            for (int i = 0; i < n / 5; i++) {
                setup(target, req, resp);
            }
            long cpu0 = cpuTicks(ProcessHandle.current().pid());
            for (int i = 0; i < n; i++) {
                lat[i] = setup(target, req, resp);
            }
            long cpu = cpuTicks(ProcessHandle.current().pid()) - cpu0;
            System.out.printf("cpu_client_us_per_connection=%.1f%n", cpu * 10_000.0 / n);
        } else {
            try (Socket s = new Socket()) {
                s.setTcpNoDelay(true);
                s.connect(target, 5000);
                for (int i = 0; i < n / 5; i++) {
                    roundTrip(s, req, resp);
                }
                for (int i = 0; i < n; i++) {
                    long t0 = System.nanoTime();
                    roundTrip(s, req, resp);
                    lat[i] = System.nanoTime() - t0;
                }
            }
        }
        long[] sorted = lat.clone();
        Arrays.sort(sorted);
        System.out.printf("%s_p50_us=%.1f%n%s_p99_us=%.1f%n%s_mean_us=%.1f%n", what, sorted[n / 2] / 1000.0, what,
                sorted[(int) (n * 0.99)] / 1000.0, what, Arrays.stream(lat).average().orElse(0) / 1000.0);
    }

    static long setup(InetSocketAddress target, byte[] req, byte[] resp) throws IOException {
        long t0 = System.nanoTime();
        try (Socket s = new Socket()) {
            s.setTcpNoDelay(true);
            s.connect(target, 5000);
            roundTrip(s, req, resp);
        }
        return System.nanoTime() - t0;
    }

    static void roundTrip(Socket s, byte[] req, byte[] resp) throws IOException {
        s.getOutputStream().write(req);
        if (s.getInputStream().readNBytes(resp, 0, PAYLOAD) != PAYLOAD) {
            throw new IOException("server closed mid-response");
        }
    }
}
