package dev.wisp.e2e;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import dev.wisp.bpf.capture.Capture;
import dev.wisp.bpf.capture.CaptureConfig;
import dev.wisp.local.Sh;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Benchmark (not a test; run by bench/capture/run.sh as root): connection setup and request latency
 * of an unmodified client in pod A talking to a server in pod B, (a) directly, (b) redirected by
 * Wisp's eBPF capture to a relay, (c) redirected by iptables REDIRECT (nat OUTPUT in pod A's
 * netns) to the same relay. The relay listens in pod A's netns on 15001 (in-pod mode), reads
 * SO_ORIGINAL_DST (answered by the eBPF hook in b, by conntrack in c) and forwards. Rounds
 * alternate the modes; each figure is the median over rounds.
 */
public final class CaptureBench {
    private static final int MARK = 0x539;

    private CaptureBench() {}

    public static void main(String[] args) throws Exception {
        Path results = Path.of(args[0]);
        int connections = Integer.parseInt(args.length > 1 ? args[1] : "2000");
        int requests = Integer.parseInt(args.length > 2 ? args[2] : "10000");
        int rounds = Integer.parseInt(args.length > 3 ? args[3] : "3");
        Map<String, List<Map<String, Double>>> byMode = new TreeMap<>();
        Map<String, Integer> relayCounts = new TreeMap<>();
        try (CaptureLab lab = CaptureLab.up("capb", 190)) {
            String podA = lab.netns(0);
            String podB = lab.netns(1);
            ServerSocket server = CaptureLab.in(podB, () -> {
                ServerSocket s = new ServerSocket();
                s.bind(new InetSocketAddress(lab.podAddress(1), 8080), 512);
                return s;
            });
            Thread.ofPlatform().daemon().start(() -> echo(server));
            StandInAgent relay = CaptureLab.in(podA, () -> StandInAgent.relay(new InetSocketAddress(15001), MARK));
            CaptureConfig config = new CaptureConfig(lab.pinRoot("bench"), lab.agentCgroup,
                    new InetSocketAddress(lab.podAddress(0), 15001), null, 15006, 15008, CaptureConfig.MESH_PORTS,
                    List.of());
            String iptables = "ip netns exec " + podA + " iptables -t nat %s OUTPUT -p tcp -d " + lab.podIp(1)
                    + " --dport 8080 -m mark ! --mark " + MARK + " -j REDIRECT --to-ports 15001";
            Map<String, Integer> throughRelay = new TreeMap<>();
            for (int round = 0; round < rounds; round++) {
                // Rotate the order so that no mode always runs first (cold) or last.
                for (int k = 0; k < 3; k++) {
                    int mode = (round + k) % 3;
                    int before = relay.accepted.size();
                    String name = switch (mode) {
                        case 0 -> {
                            byMode.computeIfAbsent("a) no capture", x -> new ArrayList<>())
                                    .add(client(lab, connections, requests));
                            yield "a) no capture";
                        }
                        case 1 -> {
                            Capture capture = Capture.open(config);
                            capture.enroll(lab.podRef(0, false));
                            try {
                                byMode.computeIfAbsent("b) eBPF redirect", x -> new ArrayList<>())
                                        .add(client(lab, connections, requests));
                            } finally {
                                capture.uninstall();
                            }
                            yield "b) eBPF redirect";
                        }
                        default -> {
                            Sh.run("sh", "-c", String.format(iptables, "-A"));
                            try {
                                byMode.computeIfAbsent("c) iptables REDIRECT", x -> new ArrayList<>())
                                        .add(client(lab, connections, requests));
                            } finally {
                                Sh.run("sh", "-c", String.format(iptables, "-D"));
                            }
                            yield "c) iptables REDIRECT";
                        }
                    };
                    throughRelay.merge(name, relay.accepted.size() - before, Integer::sum);
                }
            }
            relayCounts.putAll(throughRelay);
            relay.close();
            server.close();
            if (!relay.failures.isEmpty()) {
                System.err.println("relay failures: " + relay.failures.size() + ", first: " + relay.failures.get(0));
            }
        }
        String report = report(byMode, relayCounts, connections, requests, rounds);
        Files.createDirectories(results.getParent());
        Files.writeString(results, report);
        System.out.print(report);
    }

    private static Map<String, Double> client(CaptureLab lab, int connections, int requests) throws Exception {
        List<String> cmd = List.of(ProcessHandle.current().info().command().orElseThrow(), "-cp",
                System.getProperty("java.class.path"), CaptureBenchClient.class.getName(), lab.podIp(1), "8080",
                Integer.toString(connections), Integer.toString(requests));
        Sh.Result r = lab.inPod(0, cmd, 600);
        if (r.exit() != 0) {
            throw new IllegalStateException("bench client failed: " + r.err());
        }
        Map<String, Double> out = new TreeMap<>();
        for (String line : r.out().split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                out.put(line.substring(0, eq), Double.parseDouble(line.substring(eq + 1)));
            }
        }
        return out;
    }

    private static void echo(ServerSocket server) {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                Thread.ofPlatform().daemon().start(() -> {
                    try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                        s.setTcpNoDelay(true);
                        byte[] buf = new byte[64];
                        while (true) {
                            int got = 0;
                            while (got < buf.length) {
                                int n = in.read(buf, got, buf.length - got);
                                if (n < 0) {
                                    return;
                                }
                                got += n;
                            }
                            out.write(buf);
                        }
                    } catch (IOException e) {
                        // The client went away mid-request; nothing to serve.
                    }
                });
            } catch (IOException e) {
                return;
            }
        }
    }

    private static double median(List<Map<String, Double>> runs, String key) {
        double[] v = runs.stream().mapToDouble(m -> m.getOrDefault(key, Double.NaN)).sorted().toArray();
        return v[v.length / 2];
    }

    private static String report(Map<String, List<Map<String, Double>>> byMode, Map<String, Integer> relayCounts,
            int connections, int requests, int rounds) {
        StringBuilder sb = new StringBuilder();
        sb.append("Capture benchmark: connection setup and request latency, one run (").append(Instant.now())
                .append(")\n");
        sb.append("Conditions: ").append(Runtime.getRuntime().availableProcessors())
                .append(" cores shared with other work; kernel ").append(System.getProperty("os.version"))
                .append("; client in pod A (netns + cgroup v2), server in pod B across a node netns (veth);\n")
                .append("relay = stand-in agent in pod A's netns on 15001 (thread per connection, reads SO_ORIGINAL_DST,\n")
                .append("forwards to the original destination). Payload 64 B each way. ").append(connections)
                .append(" sequential connections (setup = connect + first 64 B round trip + close),\n").append(requests)
                .append(" sequential round trips on one connection (request). Median of ").append(rounds)
                .append(" rounds (mode order rotated each round).\n")
                .append("Connections the relay accepted per mode (proves the path taken): ").append(relayCounts)
                .append("\n\n");
        String[] keys = {"setup_p50_us", "setup_p99_us", "setup_mean_us", "request_p50_us", "request_p99_us",
                "cpu_us_per_connection"};
        sb.append(String.format("%-22s", "mode"));
        for (String k : keys) {
            sb.append(String.format("%23s", k));
        }
        sb.append('\n');
        for (var e : byMode.entrySet()) {
            sb.append(String.format("%-22s", e.getKey()));
            for (String k : keys) {
                sb.append(String.format("%23.1f", median(e.getValue(), k)));
            }
            sb.append('\n');
        }
        List<Map<String, Double>> a = byMode.get("a) no capture");
        List<Map<String, Double>> b = byMode.get("b) eBPF redirect");
        List<Map<String, Double>> c = byMode.get("c) iptables REDIRECT");
        sb.append("\nRatios (median p50):\n");
        for (String k : new String[]{"setup_p50_us", "request_p50_us"}) {
            sb.append(String.format("  %-16s eBPF/iptables %.2f   eBPF/direct %.2f   iptables/direct %.2f%n", k,
                    median(b, k) / median(c, k), median(b, k) / median(a, k), median(c, k) / median(a, k)));
        }
        sb.append("\nNote: (b) and (c) include the relay's extra hop (accept, upstream connect, copy), which\n")
                .append("dominates; the eBPF vs iptables difference is the cost of the redirect itself.\n")
                .append("cpu_us_per_connection is the client process's utime+stime over the setup phase (10 ms ticks,\n")
                .append("so coarse); the relay runs in the benchmark's own JVM and is not in it.\n");
        return sb.toString();
    }
}
