package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The L7 benchmark (issue 13): the same fixed-rate HTTP/1.1 and h2c load ({@link WaypointLoad}: GET
 * {@code /}, 1 KiB answers, coordinated omission corrected) on four paths of one local mesh, without
 * WireGuard between the nodes, so that the paths differ only by their proxies:
 * <ul>
 * <li>{@code direct}: pod {@code plain} (node 1, not captured) to pod {@code backend} (node 2, not captured);
 * <li>{@code waypoint}: pod {@code client} (node 1, captured) to the Service's VIP: node 1's agent, HBONE
 * (mTLS) to {@code wisp waypoint} (its own pod on node 1, started by the mesh from its Gateway), a new HBONE
 * stream to node 2's agent, pod {@code server};
 * <li>{@code haproxy} (HTTP mode, one thread) and {@code nginx} (one worker), each in the waypoint's pod
 * (the waypoint's network namespace and node), from {@code plain} to {@code backend} in plain HTTP.
 * </ul>
 * Every server is nginx answering 1 KiB (HTTP/1.1 on 8080, h2c on 8081); the Services {@code server} and
 * {@code server-h2} send port 80 to them. Per path and protocol: p50/p99/p99.9 at a low rate, CPU per
 * 1,000 requests of the proxy processes ({@code /proc/PID/stat}; the waypoint path also with both agents)
 * and of the whole machine ({@code /proc/stat}), the proxies' RSS, then a step-up of the rate until p99
 * passes the bound (twice the highest low-rate p99 of the four paths, so every path starts under it):
 * the last rate under it and its requests per second per proxy core (rate / CPU seconds per second).
 *
 * <p>The same class is the benchmark: {@code bench/waypoint/run.sh} runs it with {@code
 * -Dwisp.bwp.report=FILE} (longer phases, more steps, cluster {@code bwpb} on base 202, the report written
 * before anything is asserted). Here, in the suite: a second at 50, then a second at 100 requests per second,
 * and asserted that every path answered every request with 200 and 1 KiB.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WaypointBenchE2eTest {
    static final String REPORT = System.getProperty("wisp.bwp.report", "");
    static final boolean BENCH = !REPORT.isEmpty();
    static final String CLUSTER = System.getProperty("wisp.bwp.cluster", BENCH ? "bwpb" : "bwpa");
    /** The low rate; {@code -Dwisp.bwp.rate=200} keeps a loaded machine's waypoint under its capacity there. */
    static final int BASE_RATE = Integer.getInteger("wisp.bwp.rate", BENCH ? 500 : 50);
    static final int BASE_SECONDS = BENCH ? 20 : 1;
    /** Warm-up before the low-rate measure; {@code -Dwisp.bwp.warm=60} gives C2 time to compile the hot path. */
    static final int WARM_SECONDS = Integer.getInteger("wisp.bwp.warm", BENCH ? 10 : 0);
    static final int STEP_SECONDS = BENCH ? 5 : 1;
    static final List<Integer> STEPS = BENCH
            ? List.of(1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000)
            : List.of(100);
    static final int CONNECTIONS = 4;
    /**
     * The paths and protocols measured (default: all): {@code -Dwisp.bwp.paths=waypoint,haproxy-mtls
     * -Dwisp.bwp.protos=h1} measures only the waypoint against the haproxy that does its work, in a third of
     * the time, for comparing one change of the waypoint in the same run.
     */
    static final List<String> PATHS = List.of(System.getProperty("wisp.bwp.paths",
            "direct,waypoint,haproxy,haproxy-mtls,nginx").split(","));
    static final List<String> PROTOS = List.of(System.getProperty("wisp.bwp.protos", "h1,h2").split(","));
    /**
     * How long the load waits for the last answers after its schedule: the benchmark counts a request not
     * answered 10 s after the schedule as failed; the suite, which asserts every request answered, waits 60 s
     * (the wait ends as soon as all came), so that a loaded machine's slow path is not taken for a failure.
     */
    static final int GRACE_SECONDS = BENCH ? 10 : 60;
    static final int H1 = 8080;
    static final int H2 = 8081;
    static final Map<String, String> UNCAPTURED = WaypointClient.POD_LABELS;

    Path dir;
    LocalMesh mesh;
    PodApps.Shell client;
    PodApps.Shell plain;
    List<Route> routes;
    Path haproxyLog;
    Path waypointLog;

    /** A path: where its load runs and dials, and whose CPU counts as its proxy's (and the whole path's). */
    record Route(String name, String where, PodApps.Shell from, String h1Target, String h2Target, String h1Host,
            String h2Host, Supplier<List<Long>> proxy, Supplier<List<Long>> path) {
        /** The load generator's command: {@code h1Target}/{@code h2Target} are "address port". */
        String command(String proto, int rate, int seconds) {
            boolean h2 = proto.equals("h2");
            return "load " + proto + " " + (h2 ? h2Target : h1Target) + " " + (h2 ? h2Host : h1Host) + " " + rate
                    + " " + seconds + " " + CONNECTIONS + " " + GRACE_SECONDS;
        }
    }

    @BeforeAll
    void up(@TempDir Path tmp) throws Exception {
        dir = tmp;
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2)
                .base(Integer.getInteger("wisp.bwp.base", BENCH ? 202 : 198))
                .pod("client", "default", "client", 0)
                .pod(new ClusterSpec.PodSpec("plain", "default", "plain", 0, UNCAPTURED))
                .pod(new ClusterSpec.PodSpec("server", "default", "server", 1, Map.of("app", "server")))
                .pod(new ClusterSpec.PodSpec("backend", "default", "backend", 1, UNCAPTURED)).build();
        String h2Vip = LocalMesh.serviceAddress(cluster, 2);
        mesh = PodApps.up(MeshSpec.builder(cluster).workDir(dir).wireguard(false)
                .service(WaypointE2eTest.service(cluster, "server", 1, Map.of("app", "server")))
                .service(new MeshSpec.ServiceSpec("server-h2", "default", Map.of("app", "server"), h2Vip, 80, H2)),
                "nginx", "haproxy");
        for (String pod : List.of("server", "backend")) {
            mesh.startInPodLogged(pod, nginx(pod, """
                    server {
                      listen %d; listen %d http2;
                      location / { default_type text/plain; return 200 "%s"; }
                    }
                    """.formatted(H1, H2, "x".repeat(WaypointLoad.SIZE - 1) + "\\n")));
        }
        mesh.apply("waypoint.yaml", WaypointE2eTest.WAYPOINT);
        await().atMost(Duration.ofSeconds(60)).until(() -> mesh.waypointLog("default", "waypoint").isPresent());
        Path log = mesh.waypointLog("default", "waypoint").orElseThrow();
        waypointLog = log;
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                "waypoint waypoint ready on"));
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(mesh.agentAdmin("node1",
                "/config_dump")).contains(WaypointE2eTest.WAYPOINT_ID));
        String waypointPod = mesh.waypointPod("default", "waypoint").orElseThrow().name();
        String wp = mesh.pod(waypointPod).ip();
        String backend = mesh.pod("backend").ip();
        Path haproxyCfg = dir.resolve("haproxy.cfg");
        Files.writeString(haproxyCfg, haproxy("", hops(wp + ":10080", wp + ":10081 proto h2", backend + ":" + H1,
                backend + ":" + H2 + " proto h2")));
        haproxyLog = mesh.startInPodLogged(waypointPod, List.of("haproxy", "-f", haproxyCfg.toString(), "-db"));
        String plainIp = mesh.pod("plain").ip();
        startMutualTls(waypointPod, plainIp, wp, backend);
        // nginx proxies to its upstream in HTTP/1.1 whatever the client spoke (its proxy module has no h2).
        mesh.startInPodLogged(waypointPod, nginx("proxy", """
                upstream backend { server %s:%d; keepalive 64; keepalive_requests 100000000; }
                server {
                  listen %s:11080; listen %s:11081 http2;
                  location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
                }
                """.formatted(backend, H1, wp, wp)));
        client = load("client");
        plain = load("plain");
        String vip = LocalMesh.serviceAddress(cluster, 1);
        Supplier<List<Long>> none = List::of;
        Supplier<List<Long>> waypoint = () -> inPod(waypointPod, "waypoint");
        routes = Stream.of(
                new Route("direct", "plain (node 1) -> backend (node 2)", plain, backend + " " + H1, backend + " " + H2,
                        "backend",
                        "backend", none, none),
                new Route("waypoint", "client (node 1) -> agent 1 -> waypoint pod (node 1) -> agent 2 -> server",
                        client, vip + " 80", h2Vip + " 80", "server.default.svc.cluster.local",
                        "server-h2.default.svc.cluster.local", waypoint, () -> Stream.of(waypoint.get(), agent(
                                "node1"), agent("node2")).flatMap(List::stream).toList()),
                new Route("haproxy", "plain -> haproxy in the waypoint pod (node 1) -> backend", plain, wp + " 10080",
                        wp + " 10081", "backend", "backend", () -> inPod(waypointPod, "haproxy.cfg"),
                        () -> inPod(waypointPod,
                                "haproxy.cfg")),
                new Route("haproxy-mtls", "plain -> haproxy (node 1, mTLS out) -> haproxy in the waypoint pod (mTLS "
                        + "in and out) -> haproxy in the backend pod (mTLS in) -> backend", plain, plainIp + " 12080",
                        plainIp + " 12081", "backend", "backend", () -> inPod(waypointPod, "haproxy-mid"), () -> Stream
                                .of(inPod(waypointPod, "haproxy-mid"), inPod("plain", "haproxy-front"), inPod(
                                        "backend", "haproxy-back"))
                                .flatMap(List::stream).toList()),
                new Route("nginx", "plain -> nginx in the waypoint pod (node 1) -> backend (h1 upstream)", plain,
                        wp + " 11080", wp + " 11081", "backend", "backend", () -> inPod(waypointPod, "nginx"),
                        () -> inPod(
                                waypointPod, "nginx")))
                .filter(r -> PATHS.contains(r.name())).toList();
        // Every path answers before anything is measured (nginx and haproxy start in the background,
        // the agents learn the waypoint's routes a moment after it is ready).
        for (Route r : routes) {
            for (String proto : PROTOS) {
                await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500))
                        .untilAsserted(() -> assertThat(
                                run(r, proto, 10, 1)).as(() -> r.name() + " " + proto + "\n" + tails(log))
                                .containsEntry("ok", "10"));
            }
        }
    }

    /**
     * The haproxy path that does the waypoint's work: the proxy in the waypoint's pod ({@code haproxy-mid})
     * terminates mutual TLS (client certificate required, verified against the bench's CA) and opens mutual
     * TLS to the next hop, as the waypoint does with HBONE on both legs; a haproxy beside the load
     * ({@code haproxy-front}, plain in, mTLS out) and one beside the backend ({@code haproxy-back}, mTLS
     * in, plain to nginx) stand where the node agents stand on the waypoint path. ALPN {@code http/1.1}
     * or {@code h2} on each TLS hop; h2 all the way for h2. One thread each, P-256 keys, TLS 1.3.
     */
    private void startMutualTls(String waypointPod, String plainIp, String wp, String backend) throws Exception {
        Path ca = tls("ca", null);
        Path front = tls("front", ca);
        Path mid = tls("mid", ca);
        Path back = tls("back", ca);
        String caFile = dir.resolve("ca.crt").toString();
        String tls13 = """
                  ssl-default-bind-options ssl-min-ver TLSv1.3
                  ssl-default-server-options ssl-min-ver TLSv1.3
                """;
        String in = "ssl crt %s ca-file " + caFile + " verify required alpn ";
        String out = "ssl crt %s ca-file " + caFile + " verify required verifyhost %s alpn ";
        String o = out.formatted(front, "mid");
        String im = in.formatted(mid);
        String om = out.formatted(mid, "back");
        String ib = in.formatted(back);
        Map<String, String> configs = new LinkedHashMap<>();
        configs.put("front", haproxy(tls13, hops(plainIp + ":12080", plainIp + ":12081 proto h2", wp + ":12090 " + o
                + "http/1.1", wp + ":12091 " + o + "h2")));
        configs.put("mid", haproxy(tls13, hops(wp + ":12090 " + im + "http/1.1", wp + ":12091 " + im + "h2", backend
                + ":12090 " + om + "http/1.1", backend + ":12091 " + om + "h2")));
        configs.put("back", haproxy(tls13, hops(backend + ":12090 " + ib + "http/1.1", backend + ":12091 " + ib + "h2",
                "127.0.0.1:" + H1, "127.0.0.1:" + H2 + " proto h2")));
        Map<String, String> pods = Map.of("front", "plain", "mid", waypointPod, "back", "backend");
        for (Map.Entry<String, String> c : configs.entrySet()) {
            Path cfg = dir.resolve("haproxy-" + c.getKey() + ".cfg");
            Files.writeString(cfg, c.getValue());
            mesh.startInPodLogged(pods.get(c.getKey()), List.of("haproxy", "-f", cfg.toString(), "-db"));
        }
    }

    /** A haproxy configuration: one thread, HTTP mode, kept upstream connections, {@code global} lines added. */
    private static String haproxy(String global, String proxies) {
        return """
                global
                  nbthread 1
                  maxconn 4000
                %sdefaults
                  mode http
                  timeout connect 5s
                  timeout client 120s
                  timeout server 120s
                  http-reuse always
                """.formatted(global) + proxies;
    }

    /** haproxy's h1 and h2 frontends ({@code bind} lines) and their backends' one server each. */
    private static String hops(String bindH1, String bindH2, String serverH1, String serverH2) {
        return """
                frontend h1
                  bind %s
                  default_backend h1
                backend h1
                  server s %s
                frontend h2
                  bind %s
                  default_backend h2
                backend h2
                  server s %s
                """.formatted(bindH1, serverH1, bindH2, serverH2);
    }

    /**
     * A P-256 key and certificate for {@code name} (its DNS name too) in {@code dir}, signed by {@code ca}
     * (null: self-signed, the CA): the PEM haproxy's {@code crt} takes, certificate and key in one file.
     */
    private Path tls(String name, Path ca) throws Exception {
        Path key = dir.resolve(name + ".key");
        Path crt = dir.resolve(name + ".crt");
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.toString());
        if (ca == null) {
            openssl("req", "-x509", "-new", "-key", key.toString(), "-subj", "/CN=" + name, "-days", "2", "-out",
                    crt.toString());
        } else {
            Path csr = dir.resolve(name + ".csr");
            Path ext = dir.resolve(name + ".ext");
            Files.writeString(ext, "subjectAltName=DNS:" + name + "\nextendedKeyUsage=serverAuth,clientAuth\n");
            openssl("req", "-new", "-key", key.toString(), "-subj", "/CN=" + name, "-out", csr.toString());
            openssl("x509", "-req", "-in", csr.toString(), "-CA", dir.resolve("ca.crt").toString(), "-CAkey", dir
                    .resolve("ca.key").toString(), "-CAcreateserial", "-days", "2", "-extfile", ext.toString(), "-out",
                    crt.toString());
        }
        Path pem = dir.resolve(name + ".pem");
        Files.writeString(pem, Files.readString(crt) + Files.readString(key));
        return pem;
    }

    private static void openssl(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as(String.join(" ", cmd) + ": " + out).isZero();
    }

    /**
     * What the waypoint's log says of the requests it did not answer 200 (its access log's status and
     * reason, counted) and of its HBONE connections' failures: where a failed request's cause is read.
     */
    private String failures() {
        Map<String, Integer> by = new java.util.TreeMap<>();
        java.util.regex.Pattern access = java.util.regex.Pattern.compile(" status=(\\d+) .* reason=\"([^\"]*)\"");
        for (String line : PodApps.read(waypointLog).lines().toList()) {
            java.util.regex.Matcher m = access.matcher(line);
            if (line.contains("request src.identity=") && m.find() && !m.group(1).equals("200")) {
                by.merge(m.group(1) + " " + m.group(2).replaceAll("[0-9]+", "N"), 1, Integer::sum);
            } else if (line.contains("HBONE connection to") || line.contains("GOAWAY")) {
                by.merge("log: " + line.replaceAll("^.*(HBONE connection to|GOAWAY)", "$1").replaceAll("[0-9]+",
                        "N"), 1, Integer::sum);
            }
        }
        StringBuilder b = new StringBuilder("waypoint log, answers other than 200 and HBONE connection failures "
                + "(count, status, reason): " + (by.isEmpty() ? "none" : "") + "\n");
        by.forEach((k, n) -> b.append("  ").append(n).append(" ").append(k).append('\n'));
        return b.toString();
    }

    /** The last lines of the waypoint's log, node 2's agent's and the servers' nginx error logs: a failure's context. */
    private String tails(Path waypointLog) {
        StringBuilder b = new StringBuilder();
        for (Path p : List.of(waypointLog, mesh.logFile("node2"), haproxyLog, dir.resolve("nginx-server.err"), dir
                .resolve("nginx-proxy.err"))) {
            List<String> lines = PodApps.read(p).lines().toList();
            b.append("--- ").append(p.getFileName()).append('\n').append(String.join("\n", lines.subList(Math.max(0,
                    lines.size() - 15), lines.size()))).append('\n');
        }
        return b.toString();
    }

    /** nginx in the foreground, one worker, no access log, with {@code server} (its {@code http} block's servers). */
    private List<String> nginx(String name, String servers) throws IOException {
        Path conf = dir.resolve("nginx-" + name + ".conf");
        Files.writeString(conf, """
                daemon off;
                worker_processes 1;
                pid %s;
                events { worker_connections 8192; }
                http {
                  access_log off;
                  keepalive_requests 100000000;
                  keepalive_timeout 300s;
                %s}
                """.formatted(dir.resolve("nginx-" + name + ".pid"), servers.indent(2)));
        return List.of("nginx", "-c", conf.toString(), "-e", dir.resolve("nginx-" + name + ".err").toString());
    }

    private PodApps.Shell load(String pod) throws Exception {
        return new PodApps.Shell(mesh.startInPod(pod, PodApps.java(List.of("-Xmx256m", "-XX:+UseParallelGC"),
                WaypointLoad.class, "repl")), pod);
    }

    @AfterAll
    void down() throws Exception {
        PodApps.down(mesh, CLUSTER);
    }

    /** One run of the load on {@code r}: its result fields. */
    Map<String, String> run(Route r, String proto, int rate, int seconds) throws Exception {
        return NoisyNeighbourE2eTest.parse(r.from().send(r.command(proto, rate, seconds), Duration.ofSeconds(
                seconds + GRACE_SECONDS + 60L)));
    }

    /** A measured run: the load's fields and the CPU seconds (proxy, whole path, machine) over its wall seconds. */
    record Measured(Map<String, String> load, double proxyCpu, double pathCpu, double machineCpu, double wall,
            double proxyRss) {
        double p99() {
            return NoisyNeighbourE2eTest.num(load, "rq_p99_us");
        }

        boolean clean(int requests) {
            // A run whose load failed outright (rq_error=…, no ok=) is not clean: the step-up stops there.
            return String.valueOf(requests).equals(load.get("ok")) && "0".equals(load.get("rq_failed"));
        }

        double perThousand(double cpu, int requests) {
            return cpu * 1e6 / requests; // ms per 1,000 requests
        }
    }

    Measured measure(Route r, String proto, int rate, int seconds) throws Exception {
        List<Long> proxy = r.proxy().get();
        List<Long> path = r.path().get();
        double p0 = Procs.cpu(proxy);
        double q0 = Procs.cpu(path);
        double m0 = Procs.machineBusy();
        long t0 = System.nanoTime();
        Map<String, String> load = run(r, proto, rate, seconds);
        double wall = (System.nanoTime() - t0) / 1e9;
        return new Measured(load, Procs.cpu(proxy) - p0, Procs.cpu(path) - q0, Procs.machineBusy() - m0, wall,
                Procs.rssMiB(proxy));
    }

    @Test
    void everyPathAnswersEveryRequestAtAFixedRateAndTheReportHasEachFigure() throws Exception {
        String load0 = NoisyNeighbourE2eTest.loadAverage();
        List<String> loads = new ArrayList<>();
        Map<String, Measured> base = new LinkedHashMap<>();
        Map<String, List<Measured>> steps = new LinkedHashMap<>();
        Map<String, Double> bounds = new LinkedHashMap<>();
        for (String proto : PROTOS) {
            double bound = 0;
            for (Route r : routes) {
                if (WARM_SECONDS > 0) {
                    run(r, proto, BASE_RATE, WARM_SECONDS);
                }
                Measured m = measure(r, proto, BASE_RATE, BASE_SECONDS);
                base.put(r.name() + " " + proto, m);
                bound = Math.max(bound, 2 * m.p99());
            }
            bounds.put(proto, bound);
            for (Route r : routes) {
                List<Measured> up = new ArrayList<>();
                for (int rate : STEPS) {
                    Measured m = measure(r, proto, rate, STEP_SECONDS);
                    up.add(m);
                    if (!m.clean(rate * STEP_SECONDS) || m.p99() > bound) {
                        break;
                    }
                }
                steps.put(r.name() + " " + proto, up);
            }
            loads.add("after " + proto + " " + NoisyNeighbourE2eTest.loadAverage().split(" ")[0]);
        }
        String report = WaypointBenchReport.render(routes, base, steps, bounds, load0, loads) + failures();
        System.out.println(report);
        if (BENCH) {
            Files.writeString(Path.of(REPORT), report);
        }
        if (BENCH) {
            return; // the benchmark reports what failed in its table; the suite's short run asserts it
        }
        base.forEach((k, m) -> assertThat(m.load()).as(k + " at " + BASE_RATE + "/s").containsEntry("ok", ""
                + BASE_RATE * BASE_SECONDS).containsEntry("bad", "0").containsEntry("rq_failed", "0"));
        steps.forEach((k, up) -> assertThat(up.getFirst().load()).as(k + " at " + STEPS.getFirst() + "/s")
                .containsEntry("ok", "" + STEPS.getFirst() * STEP_SECONDS).containsEntry("rq_failed", "0"));
    }

    /** The pids of {@code pod}'s processes whose command line contains {@code what}. */
    private List<Long> inPod(String pod, String what) {
        return Procs.inCgroup(mesh.pod(pod).cgroup(), what);
    }

    /** The node agent's process (and its children). */
    private List<Long> agent(String node) {
        ProcessHandle h = mesh.agentProcess(node).orElseThrow().toHandle();
        return Stream.concat(Stream.of(h), h.descendants()).map(ProcessHandle::pid).toList();
    }

    /** Reads of {@code /proc}: CPU seconds and RSS of processes, the machine's busy seconds, a cgroup's pids. */
    static final class Procs {
        private Procs() {}

        static final double HZ = 100; // USER_HZ, as every Linux build the project runs on reports it

        /** utime + stime (s) summed over {@code pids}; a process gone counts 0. */
        static double cpu(List<Long> pids) {
            double t = 0;
            for (long p : pids) {
                String[] f = stat(p);
                t += f.length > 13 ? (Long.parseLong(f[11]) + Long.parseLong(f[12])) / HZ : 0;
            }
            return t;
        }

        /** Fields of /proc/PID/stat after the command's closing parenthesis (state is [0]). */
        private static String[] stat(long pid) {
            try {
                String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
                return s.substring(s.lastIndexOf(')') + 2).split(" ");
            } catch (IOException e) {
                return new String[0];
            }
        }

        /** VmRSS summed over {@code pids}, MiB. */
        static double rssMiB(List<Long> pids) {
            double kib = 0;
            for (long p : pids) {
                try {
                    kib += Files.readAllLines(Path.of("/proc/" + p + "/status")).stream().filter(l -> l.startsWith(
                            "VmRSS:")).mapToLong(l -> Long.parseLong(l.replaceAll("[^0-9]", ""))).sum();
                } catch (IOException e) {
                    // gone
                }
            }
            return kib / 1024;
        }

        /** The whole machine's busy CPU seconds since boot (every cpu column of /proc/stat but idle and iowait). */
        static double machineBusy() throws IOException {
            String[] f = Files.readAllLines(Path.of("/proc/stat")).getFirst().trim().split("\\s+");
            long busy = 0;
            for (int i = 1; i < Math.min(f.length, 9); i++) {
                busy += i == 4 || i == 5 ? 0 : Long.parseLong(f[i]);
            }
            return busy / HZ;
        }

        static List<Long> inCgroup(Path cgroup, String what) {
            try {
                return Files.readAllLines(cgroup.resolve("cgroup.procs")).stream().map(Long::parseLong).filter(
                        p -> cmdline(p).contains(what)).toList();
            } catch (IOException e) {
                throw new IllegalStateException("cannot read " + cgroup, e);
            }
        }

        private static String cmdline(long pid) {
            try {
                return Files.readString(Path.of("/proc/" + pid + "/cmdline")).replace('\0', ' ');
            } catch (IOException e) {
                return "";
            }
        }
    }

    static String format(String f, Object... args) {
        return String.format(Locale.ROOT, f, args);
    }

    static String now() {
        return Instant.now().toString();
    }
}
