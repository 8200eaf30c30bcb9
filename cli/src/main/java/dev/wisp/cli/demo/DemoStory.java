package dev.wisp.cli.demo;

import static java.util.Objects.requireNonNull;

import dev.wisp.cli.flows.ClusterFlows;
import dev.wisp.cli.flows.FlowTable;
import dev.wisp.local.AddressPlan;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.Prometheus;
import dev.wisp.node.telemetry.FlowRecord;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;

/**
 * What {@code wisp demo} tells once the mesh is up, in seven steps a person can follow: the mesh,
 * traffic over mTLS with both identities, UDP through WireGuard between the nodes, a DENY policy
 * from YAML, its removal, HTTP routing by a waypoint ({@link DemoWaypoint}), and the metrics.
 * Every line fits 80 columns except the YAML, the paths and {@code wisp flows}' table it prints. Runs on the command's thread.
 */
final class DemoStory {
    static final String SERVER = "server";
    /** The second version of the server, started by the waypoint step. */
    static final String SERVER_V2 = "server-v2";
    /** The Service in front of {@link #SERVER}, by the name the clients call it (the agents' DNS answers it). */
    static final String SERVICE_NAME = "server.default.svc.cluster.local";
    static final String CLIENT = "client";
    static final String CURL = "curl";
    static final String POLICY_FILE = "deny-other.yaml";
    static final String POLICY = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: deny-other
              namespace: default
            spec:
              selector:
                matchLabels:
                  app: server
              action: DENY
              rules:
              - from:
                - source:
                    namespaces: ["other"]
            """;
    static final String PROMQL = "sum by (source_workload) "
            + "(istio_tcp_connections_opened_total{reporter=\"destination\"})";
    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(60);

    private final LocalMesh mesh;
    private final PrintWriter out;
    private final ClusterFlows flows;
    private final FlowTable table = new FlowTable(ZoneId.systemDefault());
    /** Every connection read so far from the agents, oldest first. */
    private final List<FlowTable.Row> seen = new ArrayList<>();
    private CallCounter client;
    private CallCounter curl;
    private List<String> wisp = List.of();

    DemoStory(LocalMesh mesh, PrintWriter out) throws IOException {
        this.mesh = requireNonNull(mesh, "mesh");
        this.out = requireNonNull(out, "out");
        this.flows = ClusterFlows.of(mesh.name(), null);
    }

    /** Prints the first step's facts: nodes, pods, identities, where things are. */
    void meshUp() {
        for (LocalCluster.Node n : mesh.cluster().nodes()) {
            List<String> pods = pods().stream().filter(p -> p.node().equals(n)).map(p -> p.name()
                    + " (" + p.spec().namespace() + ") " + p.ip()).toList();
            out.println(clip("  " + n.name() + " " + n.address() + ": " + String.join(", ", pods)));
        }
        out.println("  identities (SPIFFE X.509, issued per service account by the control plane):");
        for (LocalCluster.Pod p : pods()) {
            out.printf("    %-7s %s%n", p.name(), mesh.spiffeId(p.name()));
        }
        out.println("  config dir (watched): " + mesh.configDir());
        out.println("  logs:                 " + mesh.workDir());
        out.flush();
    }

    /** The pods by node, then name. */
    private List<LocalCluster.Pod> pods() {
        return mesh.cluster().pods().stream().sorted(java.util.Comparator.comparing((LocalCluster.Pod p) -> p.node()
                .index()).thenComparing(LocalCluster.Pod::name)).toList();
    }

    /** Starts the server on node 2 and both clients on node 1, each calling the server every {@code interval}. */
    void startApps(List<String> wisp, Duration interval) throws IOException {
        this.wisp = List.copyOf(wisp);
        String url = "http://" + SERVICE_NAME + "/";
        mesh.startInPodLogged(SERVER, command(wisp, "demo-app", "server", "--name", SERVER, "--port", "8080"));
        String pace = interval.toString();
        client = new CallCounter("default/client").follow(mesh.startInPod(CLIENT, command(wisp, "demo-app",
                "client", "--url", url, "--interval", pace)).getInputStream());
        curl = new CallCounter("other/curl").follow(mesh.startInPod(CURL, command(wisp, "demo-app", "client",
                "--url", url, "--interval", pace)).getInputStream());
        out.println("  apps: 'server' answers HTTP on " + AddressPlan.hostPort(mesh.pod(SERVER).ip(), 8080)
                + ", behind the Service");
        out.println("        'server' (" + AddressPlan.hostPort(LocalMesh.serviceAddress(mesh.cluster().spec(), 1), 80)
                + "); 'client' and 'curl' call it by name,");
        out.println("        " + url + ", " + (interval.equals(Duration.ofSeconds(1))
                ? "once a second"
                : "every " + interval.toMillis() + " ms") + " with plain HTTP: they");
        out.println("        know nothing of the mesh (the agents answer the name).");
        out.flush();
    }

    private static List<String> command(List<String> wisp, String... args) {
        List<String> c = new ArrayList<>(wisp);
        c.addAll(List.of(args));
        return c;
    }

    /** Step 2: waits for calls over HBONE and shows both identities from the agents' flow records. */
    void traffic() {
        String clientId = mesh.spiffeId(CLIENT);
        String serverId = mesh.spiffeId(SERVER);
        out.println("Each connect() in a pod is steered by eBPF into its node's agent, which carries it");
        out.println("to the server's node over HBONE: HTTP/2 CONNECT in mutual TLS 1.3.");
        out.flush();
        await("calls from client to succeed", () -> client.ok() >= 2 && curl.ok() >= 1);
        // One call as both agents saw it: the server's agent names the client's address as it was.
        FlowTable.Row[] pair = new FlowTable.Row[2];
        await("both agents to record the same call from client", () -> {
            refreshFlows();
            for (FlowTable.Row in : seen.reversed()) {
                if (isInbound(in) && in.flow().sourceIdentity().equals(clientId) && in.flow().verdict().equals(
                        FlowRecord.ALLOWED)) {
                    Optional<FlowTable.Row> sent = seen.stream().filter(r -> r.flow().reporter().equals("source")
                            && r.flow().sourceAddress().equals(in.flow().sourceAddress()) && r.flow()
                                    .destinationIdentity().equals(serverId))
                            .findFirst();
                    if (sent.isPresent()) {
                        pair[0] = sent.get();
                        pair[1] = in;
                        return true;
                    }
                }
            }
            return false;
        });
        FlowTable.Row outbound = pair[0];
        FlowTable.Row in = pair[1];
        out.println(clip("  " + client.name() + ": " + client.lastLine()));
        out.println("  flows (wisp flows), one call seen by both agents:");
        out.println("  " + table.compact(outbound));
        out.println("  " + table.compact(in));
        out.println(clip("  addresses in " + in.node() + "'s record: " + in.flow().sourceAddress() + " -> " + in.flow()
                .destinationAddress()));
        out.println("  mTLS: " + (in.flow().mtls() ? "yes" : "no") + "; the identities each agent checked:");
        out.println("    client  " + in.flow().sourceIdentity() + "  (certificate checked by " + in.node() + ")");
        out.println("    server  " + outbound.flow().destinationIdentity() + "  (certificate checked by "
                + outbound.node() + ")");
        out.flush();
    }

    /**
     * Step 3: a UDP call from the client pod (node 1) to the server pod (node 2) crosses the underlay
     * inside the nodes' WireGuard devices; then node 1's device as {@code wg show} prints it.
     */
    void wireGuard() throws IOException {
        out.println("UDP, ICMP and pods outside the mesh are not HBONE's: between the nodes the");
        out.println("agents' WireGuard devices carry them (Java, over TUN; a peer is installed when");
        out.println("the first packet needs it). One UDP call from client (node1) to server (node2):");
        out.flush();
        String clientNs = mesh.pod(CLIENT).netns();
        String serverNs = mesh.pod(SERVER).netns();
        InetAddress server = InetAddress.ofLiteral(mesh.pod(SERVER).ip());
        String payload = "hello over WireGuard";
        UdpEcho.Result r = UdpEcho.call(serverNs, clientNs, server, payload, STEP_TIMEOUT);
        if (r.reply() == null) {
            throw new DemoException("no UDP echo from " + dev.wisp.base.IpText.of(server) + " within " + STEP_TIMEOUT
                    .toSeconds() + " s (" + r.attempts() + " tries); see the agents' logs in " + mesh.workDir());
        }
        out.printf("  client -> %s  \"%s\"  echoed after %d tr%s, %.1f ms%n", dev.wisp.base.IpText.hostPort(
                server, r.port()), r.reply(), r.attempts(), r.attempts() == 1 ? "y" : "ies", r.millis());
        String node = mesh.pod(CLIENT).node().name();
        String iface = mesh.wireguardInterface(node);
        out.println("  node1's device, as wg show " + iface + " prints it in node1's namespace:");
        Process p;
        try {
            p = new ProcessBuilder("ip", "netns", "exec", mesh.node(node).netns(), "wg", "show", iface)
                    .redirectErrorStream(true).start();
        } catch (IOException e) {
            out.println("    (cannot run wg: " + e.getMessage() + "; install wireguard-tools)");
            out.flush();
            return;
        }
        String show = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        try {
            p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        show.lines().filter(l -> !l.isBlank()).forEach(l -> out.println(clip("    " + l.strip())));
        out.flush();
    }

    /** Step 4: writes the DENY policy and waits until other/curl's calls fail while client's go on. */
    void deny() {
        Path file = mesh.configDir().resolve(POLICY_FILE);
        out.println("Writing " + file + ":");
        POLICY.lines().forEach(l -> out.println("  | " + l));
        out.println("The control plane sees the file and pushes the policy to the agents.");
        out.flush();
        long clientOk = client.ok();
        long curlFailedBefore = curl.failed();
        mesh.apply(POLICY_FILE, POLICY);
        await("calls from other/curl to be denied", () -> curl.consecutiveFailures() >= 3);
        await("calls from default/client to go on", () -> client.ok() >= clientOk + 2);
        String curlId = mesh.spiffeId(CURL);
        FlowTable.Row denied = awaitFlow("a denied call in the server's agent's flows", r -> isInbound(r)
                && r.flow().sourceIdentity().equals(curlId) && r.flow().verdict().equals(FlowRecord.DENIED));
        out.println("  " + curl.name() + ": " + (curl.failed() - curlFailedBefore) + " calls failed since the "
                + "policy");
        out.println(clip("    " + curl.lastLine()));
        out.println(clip("  " + client.name() + ": still ok (" + client.lastLine() + ")"));
        out.println("  denied connections in node2's flows: " + count(r -> isInbound(r) && r.flow().verdict()
                .equals(FlowRecord.DENIED)) + " (Java's HTTP client retries a refused call)");
        out.println("  " + table.compact(denied));
        out.println(clip("    reason: " + denied.flow().reason()));
        out.flush();
    }

    /** Step 5: removes the policy file and waits until other/curl's calls succeed again. */
    void restore() {
        out.println("Deleting " + mesh.configDir().resolve(POLICY_FILE) + "…");
        out.flush();
        long start = System.nanoTime();
        long curlOk = curl.ok();
        mesh.delete(POLICY_FILE);
        await("calls from other/curl to succeed again", () -> curl.ok() >= curlOk + 2);
        out.printf("  calls restored: %s ok again after %.1f s%n", curl.name(), (System.nanoTime() - start) / 1e9);
        out.println(clip("    " + curl.lastLine()));
        out.flush();
        deniedCalls();
    }

    /**
     * Runs {@code wisp flows --verdict denied --from other/curl} as a user would in another terminal,
     * prints what it printed, and checks it names exactly the denied calls of other/curl the server's agent
     * recorded (the policy is gone, so no more come).
     */
    private void deniedCalls() {
        List<String> cmd = command(wisp, "flows", "--cluster", mesh.name(), "--verdict", FlowRecord.DENIED, "--from",
                "other/" + CURL);
        out.println("  what the policy denied: wisp flows --verdict denied --from other/" + CURL);
        out.flush();
        List<String> lines;
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            lines = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).lines()
                    .toList();
            if (!p.waitFor(STEP_TIMEOUT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new DemoException("wisp flows failed: " + String.join(" / ", lines));
            }
        } catch (IOException e) {
            throw new DemoException("cannot run wisp flows: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DemoException("interrupted");
        }
        lines.forEach(l -> out.println(l.stripTrailing()));
        refreshFlows();
        String curlId = mesh.spiffeId(CURL);
        long recorded = count(r -> isInbound(r) && r.flow().sourceIdentity().equals(curlId) && r.flow().verdict()
                .equals(FlowRecord.DENIED));
        List<String> rows = lines.stream().skip(1).filter(l -> !l.isBlank()).toList();
        boolean onlyDenied = rows.stream().allMatch(l -> l.contains(" " + FlowRecord.DENIED + " ") && l.contains(
                "(ns/other/sa/" + CURL + ")"));
        if (rows.size() != recorded || !onlyDenied) {
            throw new DemoException("wisp flows printed " + rows.size() + " rows" + (onlyDenied
                    ? ""
                    : ", not all denied calls of other/" + CURL) + "; node2 recorded " + recorded
                    + " denied calls of other/" + CURL);
        }
        out.println("  " + rows.size() + " denied calls of other/" + CURL + ": exactly those node2's agent recorded");
        out.flush();
    }

    /** Step 6: a waypoint routes the Service's calls, 20 % of them to a v2 ({@link DemoWaypoint}). */
    void waypoint() throws IOException {
        new DemoWaypoint(mesh, out, wisp, this::await).run();
    }

    /** Step 7: the server agent's metrics (Istio's names) from the host, and Prometheus when asked for. */
    void metrics(Optional<Prometheus> prometheus) throws IOException {
        String node = mesh.pod(SERVER).node().name();
        String url = mesh.metricsUrl(node);
        String text = fetch(url);
        Map<String, Double> opened = PromText.sumBy(text, "istio_tcp_connections_opened_total", Map.of("reporter",
                "destination"), "source_workload");
        out.println("The agents serve Prometheus metrics on their node address, reachable from this host:");
        out.println("  curl -s " + url);
        out.println("  connections node2 accepted (istio_tcp_connections_opened_total, reporter=destination):");
        opened.forEach((w, v) -> out.printf("    source_workload=%-10s %6.0f%n", w, v));
        refreshFlows();
        Map<String, Long> recorded = new java.util.TreeMap<>();
        seen.stream().filter(this::isInbound).forEach(r -> recorded.merge(r.flow().sourceWorkload(), 1L, Long::sum));
        out.println("  the same connections in node2's flow log (completed ones; a call may be in flight):");
        recorded.forEach((w, n) -> out.printf("    source_workload=%-10s %6d%n", w, n));
        out.printf("  and as the apps saw them: client %d ok; curl %d ok, %d failed%n", client.ok(), curl.ok(),
                curl.failed());
        out.flush();
        if (prometheus.isPresent()) {
            Prometheus p = prometheus.get();
            out.println("Prometheus scrapes the agents and the control plane every second:");
            out.println("  " + p.url() + "/graph");
            out.println("  query:");
            out.println("    " + PROMQL);
            out.flush();
            List<Prometheus.Sample> result = List.of();
            long deadline = System.nanoTime() + STEP_TIMEOUT.toNanos();
            while (result.size() < 2 && System.nanoTime() < deadline) {
                result = p.query(PROMQL);
                pause();
            }
            if (result.isEmpty()) {
                throw new DemoException("Prometheus at " + p.url() + " has no istio_tcp_* samples after "
                        + STEP_TIMEOUT.toSeconds() + " s; see " + mesh.workDir().resolve("prometheus"));
            }
            for (Prometheus.Sample s : result) {
                out.printf("    {source_workload=\"%s\"} %.0f%n", s.labels().getOrDefault("source_workload", ""),
                        s.value());
            }
            out.flush();
        }
    }

    /** Prints the server agent's new connections as they complete, until {@code until} is false. */
    void follow(BooleanSupplier until) {
        while (until.getAsBoolean()) {
            for (FlowTable.Row r : refreshFlows()) {
                if (isInbound(r)) {
                    out.println("  " + table.compact(r));
                }
            }
            out.flush();
            pause();
        }
    }

    /** {@code line} cut to 80 columns. */
    private static String clip(String line) {
        return line.codePointCount(0, line.length()) <= 80 ? line : FlowTable.fit(line, 80);
    }

    private boolean isInbound(FlowTable.Row r) {
        return r.node().equals(mesh.pod(SERVER).node().name()) && r.flow().reporter().equals("destination");
    }

    private long count(Predicate<FlowTable.Row> p) {
        return seen.stream().filter(p).count();
    }

    /** Reads what the agents recorded since the last call; remembers it; returns the new rows. */
    private List<FlowTable.Row> refreshFlows() {
        ClusterFlows.Poll p = flows.poll();
        if (!p.failures().isEmpty()) {
            throw new DemoException(p.failures().values().iterator().next());
        }
        seen.addAll(p.rows());
        return p.rows();
    }

    private FlowTable.Row awaitFlow(String what, Predicate<FlowTable.Row> match) {
        FlowTable.Row[] found = new FlowTable.Row[1];
        await(what, () -> {
            refreshFlows();
            found[0] = seen.reversed().stream().filter(match).findFirst().orElse(null);
            return found[0] != null;
        });
        return found[0];
    }

    private void await(String what, BooleanSupplier done) {
        long deadline = System.nanoTime() + STEP_TIMEOUT.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                String calls = client == null ? "" : " (" + client.summary() + "; " + curl.summary() + ")";
                throw new DemoException("waited " + STEP_TIMEOUT.toSeconds() + " s for " + what + calls
                        + "; see the logs in " + mesh.workDir());
            }
            pause();
        }
    }

    private static void pause() {
        try {
            Thread.sleep(200);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DemoException("interrupted");
        }
    }

    private static String fetch(String url) throws IOException {
        try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(3)).build()) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5))
                    .build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                throw new IOException(url + " answered " + r.statusCode());
            }
            return r.body();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted reading " + url, e);
        }
    }

    /** A step did not happen: one line for the operator. */
    static final class DemoException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        DemoException(String message) {
            super(message);
        }
    }
}
