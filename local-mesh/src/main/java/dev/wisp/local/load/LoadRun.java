package dev.wisp.local.load;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A load run through a {@link LocalMesh}: {@link PodLoad} holders in two client pods on the first
 * node ({@link #CLIENTS}) keep connections open to an echo pod on the second ({@link #SERVER}),
 * echoing on each every few seconds; optionally a churn of short connections, an
 * {@code AuthorizationPolicy} rewritten at a fixed period (every version allows the clients, so
 * every call should pass) and one control-plane restart at a planned time, while an
 * {@link AgentSampler} records both agents. {@code bench/soak/run.sh} runs it from {@link #main};
 * the e2e suite runs a short one.
 */
public final class LoadRun {
    public static final String SERVER = "echo";
    public static final List<String> CLIENTS = List.of("load-a", "load-b");
    public static final int HOLD_PORT = 7001;
    public static final int CHURN_PORT = 7002;
    static final String POLICY_FILE = "load-policy.yaml";

    /**
     * @param connections held connections in all (split between the two client pods)
     * @param hold how long they are held once all are open
     * @param echoPeriodMs each held connection echoes 16 bytes this often
     * @param churnPerSecond short connections (connect, echo, close) opened per second, from load-b; 0 for none
     * @param policyEvery the policy is rewritten this often, or null for never (and no policy at all)
     * @param restartAt the control plane is killed and started again this long after all are open, or null
     */
    public record Settings(int connections, Duration hold, long echoPeriodMs, int churnPerSecond, Duration policyEvery,
            Duration restartAt) {}

    /** A failure a pod reported: epoch milliseconds, pod, reason. */
    public record Failure(long atMs, String pod, String reason) {}

    /**
     * What a run did. {@code restartFromMs}/{@code restartToMs} bound the control plane's planned
     * outage (kill issued → its configuration live again), 0 when there was none; {@code allOpenMs}
     * to {@code endMs} is the steady part (every held connection open, before they were closed).
     */
    public record Outcome(long held, long openAtEnd, long churned, long echoes, List<Failure> failures,
            int policyChanges, long restartFromMs, long restartToMs, long allOpenMs, long endMs) {
        /** Failures outside the planned restart window. */
        public List<Failure> failuresOutsideRestart() {
            return failures.stream().filter(f -> restartToMs == 0 || f.atMs() < restartFromMs || f.atMs() > restartToMs)
                    .toList();
        }
    }

    private LoadRun() {}

    /** The mesh a run needs: pods load-a and load-b on the first node, echo (app=echo) on the second. */
    public static MeshSpec.Builder mesh(String cluster, int base, Path workDir) {
        ClusterSpec.Builder c = ClusterSpec.builder(cluster).nodes(2).base(base);
        for (String p : CLIENTS) {
            c.pod(p, "default", p, 0);
        }
        c.pod(new ClusterSpec.PodSpec(SERVER, "default", SERVER, 1, Map.of("app", SERVER)));
        return MeshSpec.builder(c.build()).workDir(workDir);
    }

    /**
     * Version {@code i} of the policy on the echo pod: even versions allow the clients by principal,
     * odd ones by namespace and port (and deny a namespace nobody calls from); each allows every
     * call the run makes.
     */
    static String policy(int i) {
        String rule = i % 2 == 0
                ? "- from: [{source: {principals: [" + String.join(", ", CLIENTS.stream().map(
                        p -> "cluster.local/ns/default/sa/" + p).toList()) + "]}}]"
                : "- from: [{source: {namespaces: [default]}}]\n    to: [{operation: {ports: [\"" + HOLD_PORT + "\", \""
                        + CHURN_PORT + "\"]}}]";
        return """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: load-allow, namespace: default}
                spec:
                  selector: {matchLabels: {app: %s}}
                  action: ALLOW
                  rules:
                  %s
                """.formatted(SERVER, rule);
    }

    /** Runs the load on {@code mesh} (up, with nothing of ours started yet); progress lines go to {@code log}. */
    public static Outcome run(LocalMesh mesh, Settings s, PrintStream log) throws IOException, InterruptedException {
        int changes = 0;
        if (s.policyEvery() != null) {
            mesh.apply(POLICY_FILE, policy(changes++));
        }
        String server = mesh.pod(SERVER).ip();
        List<Failure> failures = new CopyOnWriteArrayList<>();
        PodRun echo = new PodRun(mesh, SERVER, failures, PodLoad.command("serve", "" + HOLD_PORT, "" + CHURN_PORT));
        echo.awaitFirst("listening");
        List<PodRun> holders = new ArrayList<>();
        for (int i = 0; i < CLIENTS.size(); i++) {
            int n = s.connections() / CLIENTS.size() + (i < s.connections() % CLIENTS.size() ? 1 : 0);
            holders.add(new PodRun(mesh, CLIENTS.get(i), failures, PodLoad.command("hold", server, "" + HOLD_PORT, ""
                    + n, "" + s.echoPeriodMs())));
        }
        for (PodRun h : holders) {
            h.awaitFirst("ready");
        }
        long deadline = System.currentTimeMillis() + Math.max(120_000, s.connections() * 60L);
        while (sum(holders, "opened") + sum(holders, "failed") < s.connections()) {
            if (System.currentTimeMillis() > deadline) {
                throw new IOException("only " + sum(holders, "opened") + " of " + s.connections()
                        + " connections opened in time; failures " + failures.size());
            }
            TimeUnit.MILLISECONDS.sleep(200);
        }
        long allOpen = System.currentTimeMillis();
        log.printf("%s: %d connections open, %d failed%n", Instant.now(), sum(holders, "opened"), failures.size());
        PodRun churn = s.churnPerSecond() > 0
                ? new PodRun(mesh, CLIENTS.getLast(), failures, PodLoad.command("churn",
                        server, "" + CHURN_PORT, "" + s.churnPerSecond()))
                : null;
        long restartFrom = 0, restartTo = 0;
        long end = allOpen + s.hold().toMillis();
        long nextPolicy = s.policyEvery() == null ? Long.MAX_VALUE : allOpen + s.policyEvery().toMillis();
        long restartAt = s.restartAt() == null ? Long.MAX_VALUE : allOpen + s.restartAt().toMillis();
        long nextLog = allOpen + 60_000;
        for (long now; (now = System.currentTimeMillis()) < end;) {
            if (now >= nextPolicy) {
                mesh.apply(POLICY_FILE, policy(changes++));
                nextPolicy += s.policyEvery().toMillis();
            }
            if (now >= restartAt) {
                restartAt = Long.MAX_VALUE;
                restartFrom = System.currentTimeMillis();
                mesh.killControlPlane();
                mesh.startControlPlane();
                restartTo = System.currentTimeMillis();
                log.printf("%s: control plane restarted in %d ms%n", Instant.now(), restartTo - restartFrom);
            }
            if (now >= nextLog) {
                nextLog += 60_000;
                log.printf("%s: open %d, churned %d, echoes %d, failures %d, load %s%n", Instant.now(), sum(holders,
                        "open"), churn == null ? 0 : churn.field("opened"), sum(holders, "echoes"), failures.size(),
                        loadAverage());
            }
            TimeUnit.MILLISECONDS.sleep(Math.max(1, Math.min(1000, end - now)));
        }
        long steadyEnd = System.currentTimeMillis();
        List<PodRun> all = new ArrayList<>(holders);
        if (churn != null) {
            all.add(churn);
        }
        for (PodRun p : all) {
            p.stop();
        }
        echo.stop();
        return new Outcome(sum(holders, "opened"), sum(holders, "open"), churn == null ? 0 : churn.field("opened"), sum(
                holders, "echoes") + (churn == null ? 0 : churn.field("echoes")), List.copyOf(failures), changes,
                restartFrom, restartTo, allOpen, steadyEnd);
    }

    private static long sum(List<PodRun> runs, String field) {
        return runs.stream().mapToLong(r -> r.field(field)).sum();
    }

    /** {@code /proc/loadavg}'s three averages. */
    public static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "?";
        }
    }

    /**
     * One {@link PodLoad} process in a pod: its status fields and failures, read from its output
     * (its status line comes every {@link PodLoad#STATUS_EVERY_MS} ms).
     */
    public static final class PodRun {
        private static final Pattern FIELD = Pattern.compile("(\\w+)=(\\d+)");
        private final String pod;
        private final Process process;
        private final List<String> first = new CopyOnWriteArrayList<>();
        private final Map<String, Long> fields = new HashMap<>();
        private final Thread reader;

        /** Starts {@code command} ({@link PodLoad#command}) in {@code pod}; what it reports failed goes to {@code failures}. */
        public PodRun(LocalMesh mesh, String pod, List<Failure> failures, List<String> command) throws IOException {
            this.pod = pod;
            this.process = mesh.startInPod(pod, command);
            BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.US_ASCII));
            reader = Thread.ofPlatform().daemon().start(() -> {
                try {
                    for (String l; (l = out.readLine()) != null;) {
                        if (l.startsWith("status ")) {
                            Matcher m = FIELD.matcher(l);
                            synchronized (fields) {
                                while (m.find()) {
                                    fields.put(m.group(1), Long.parseLong(m.group(2)));
                                }
                            }
                        } else if (l.startsWith("failed ")) {
                            String[] f = l.split(" ", 3);
                            failures.add(new Failure(Long.parseLong(f[1]), pod, f.length > 2 ? f[2] : ""));
                        } else if (first.size() < 20) {
                            first.add(l);
                        }
                    }
                } catch (IOException | RuntimeException e) {
                    first.add("output unreadable: " + e);
                }
            });
        }

        /** The last status line's {@code name} ({@code open}, {@code opened}, {@code failed}, {@code echoes}), 0 before. */
        public long field(String name) {
            synchronized (fields) {
                return fields.getOrDefault(name, 0L);
            }
        }

        /** Waits (2 minutes at most) for {@code line} among its first lines ({@code ready}, {@code listening}). */
        public void awaitFirst(String line) throws IOException, InterruptedException {
            long deadline = System.currentTimeMillis() + 120_000;
            while (!first.contains(line)) {
                if (System.currentTimeMillis() > deadline || !process.isAlive() && !first.contains(line)) {
                    reader.join(1000);
                    throw new IOException("PodLoad in " + pod + " did not print '" + line + "': " + first);
                }
                TimeUnit.MILLISECONDS.sleep(100);
            }
        }

        /** Asks it to stop, and waits for its last status line and its exit. */
        public void stop() throws IOException, InterruptedException {
            if (process.isAlive()) {
                process.getOutputStream().write("stop\n".getBytes(StandardCharsets.US_ASCII));
                process.getOutputStream().flush();
            }
            if (!process.waitFor(60, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
            reader.join(10_000);
        }
    }

    /**
     * {@code LoadRun MODE key=value…}: builds the mesh, runs, writes the results file and its plot.
     * Keys: cluster, base, work, out (results file), svg, connections, hold (seconds), period (ms),
     * churn (per second), policy (seconds, 0 for none), restart (seconds after all are open, 0 for
     * none), sample (seconds).
     */
    public static void main(String[] args) throws Exception {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            a.put(kv[0], kv[1]);
        }
        String mode = args[0];
        String cluster = a.getOrDefault("cluster", mode.equals("soak") ? "soak" : "ld10k");
        int base = Integer.parseInt(a.getOrDefault("base", mode.equals("soak") ? "158" : "156"));
        Path out = Path.of(a.getOrDefault("out", "bench/results/soak-" + mode + ".txt"));
        Path svg = Path.of(a.getOrDefault("svg", out.toString().replaceAll("\\.txt$", "") + ".svg"));
        long policy = Long.parseLong(a.getOrDefault("policy", mode.equals("soak") ? "60" : "0"));
        long restart = Long.parseLong(a.getOrDefault("restart", mode.equals("soak") ? "1800" : "0"));
        Settings s = new Settings(Integer.parseInt(a.getOrDefault("connections", mode.equals("soak")
                ? "500"
                : "10000")), Duration.ofSeconds(Long.parseLong(
                        a.getOrDefault("hold", mode.equals("soak")
                                ? "3600"
                                : "300"))),
                Long.parseLong(a.getOrDefault("period", "5000")), Integer.parseInt(a
                        .getOrDefault("churn", mode.equals("soak") ? "20" : "0")),
                policy > 0 ? Duration.ofSeconds(policy) : null, restart > 0 ? Duration.ofSeconds(restart) : null);
        Duration every = Duration.ofSeconds(Long.parseLong(a.getOrDefault("sample", "10")));
        Files.createDirectories(out.toAbsolutePath().getParent());
        Files.deleteIfExists(out);
        Path work = Path.of(a.getOrDefault("work", "/tmp/wisp-load-" + cluster));
        String startLoad = loadAverage();
        try (LocalMesh mesh = LocalMesh.up(mesh(cluster, base, work).build()).closeOnShutdown()) {
            AgentSampler sampler = new AgentSampler(mesh, out, every);
            Outcome o;
            try {
                sampler.append(String.format(Locale.ROOT,
                        "# %s %s, started %s, load average at start %s; %d cores shared"
                                + " with other work",
                        mode, s, Instant.now(), startLoad, Runtime.getRuntime()
                                .availableProcessors()));
                o = run(mesh, s, System.out);
            } finally {
                sampler.close();
            }
            List<String> summary = summary(mode, s, o, sampler, AgentSampler.read(out));
            for (String l : summary) {
                sampler.append("# " + l);
                System.out.println(l);
            }
            Map<String, Double> marks = new LinkedHashMap<>();
            marks.put("all open", (o.allOpenMs() - sampler.startMillis()) / 1000.0);
            if (o.restartFromMs() > 0) {
                marks.put("control-plane restart", (o.restartFromMs() - sampler.startMillis()) / 1000.0);
            }
            Files.writeString(svg, LoadFigures.svg("wisp " + mode + ": " + s.connections() + " held connections, "
                    + Instant.ofEpochMilli(sampler.startMillis()), AgentSampler.read(out), marks));
        }
    }

    /** The human part of a results file: what ran, what failed, and each agent's figures and slopes. */
    static List<String> summary(String mode, Settings s, Outcome o, AgentSampler sampler,
            List<AgentSampler.Sample> rows) {
        List<String> l = new ArrayList<>();
        double allOpen = (o.allOpenMs() - sampler.startMillis()) / 1000.0;
        l.add(String.format(Locale.ROOT, "%s: %d connections opened and held %.0f s (all open at t=%.0f s), %d still "
                + "open at the end; %d short connections churned; %d echoes; %d policy versions; load average at end %s",
                mode, o.held(), (o.endMs() - o.allOpenMs()) / 1000.0, allOpen, o.openAtEnd(), o.churned(), o.echoes(),
                o.policyChanges(), loadAverage()));
        if (o.restartFromMs() > 0) {
            l.add(String.format(Locale.ROOT, "control-plane restart window: t=%.0f s to t=%.0f s (%d ms, kill to live)",
                    (o.restartFromMs() - sampler.startMillis()) / 1000.0, (o.restartToMs() - sampler.startMillis())
                            / 1000.0,
                    o.restartToMs() - o.restartFromMs()));
        }
        l.add("failures: " + o.failures().size() + " in all, " + o.failuresOutsideRestart().size()
                + " outside the restart window");
        o.failures().stream().limit(20).forEach(f -> l.add(String.format(Locale.ROOT, "  failure t=%.1f s %s %s",
                (f.atMs() - sampler.startMillis()) / 1000.0, f.pod(), f.reason())));
        double end = (o.endMs() - sampler.startMillis()) / 1000.0;
        l.add(String.format(Locale.ROOT, "per agent, from t=%.0f s (all open) to t=%.0f s (closing):", allOpen, end));
        l.addAll(LoadFigures.summary(rows.stream().filter(r -> r.t() <= end).toList(), allOpen));
        return l;
    }
}
