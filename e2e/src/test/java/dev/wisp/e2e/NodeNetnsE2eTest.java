package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalCluster;
import dev.wisp.base.Closing;
import dev.wisp.testing.EchoServer;
import dev.wisp.testing.Netns;
import dev.wisp.testing.Prerequisites;
import dev.wisp.local.InNetns;
import dev.wisp.testing.RawHboneClient;
import dev.wisp.testing.RoundTrip;
import dev.wisp.testing.Socks5Client;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.io.DataInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Two node agents ({@code wisp node}, each a child JVM in its node's namespace of a
 * {@link LocalCluster} without agents of its own) carry a SOCKS5 client on node 1 to workloads in
 * pod-b on node 2 over HBONE: issue 3's "Must show" items (the policy item runs on the control
 * plane, {@link ControlPlaneMeshE2eTest}, since a standalone agent's state file is read once).
 * Hostile input on node 2's HBONE port comes from this test, a third party in node 1's namespace.
 * Both agents run with Netty's paranoid leak detector.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NodeNetnsE2eTest {
    static final String CLUSTER = "nnet";
    /** Node 1 and 2 (10.176.0.11/12) and pod-a, pod-b (10.177.0.10, 10.177.1.10): the cluster's plan. */
    static final ClusterSpec SPEC = ClusterSpec.builder(CLUSTER).nodes(2).base(176).pod("pod-a", "default", "client",
            0).pod("pod-b", "default", "server", 1).build();
    static final InetSocketAddress ECHO = new InetSocketAddress("10.177.1.10", 9000);
    /** On pod-b: reads to EOF, then answers {@link #REPLY} bytes (so each direction's count differs). */
    static final InetSocketAddress SINK = new InetSocketAddress("10.177.1.10", 9001);
    static final int REPLY = 5_000;
    static final InetSocketAddress SOCKS = new InetSocketAddress("127.0.0.1", 15080);
    static final InetSocketAddress HBONE2 = new InetSocketAddress("10.176.0.12", 15008);
    static final InetSocketAddress METRICS1 = new InetSocketAddress("10.176.0.11", 15020);
    static final InetSocketAddress METRICS2 = new InetSocketAddress("10.176.0.12", 15020);
    static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    static final String SERVER_ID = "spiffe://cluster.local/ns/default/sa/server";
    static final SpiffeId N2_ID = IdentityProvider.nodeId("cluster.local", "n2");
    @TempDir
    static Path dir;
    static LocalCluster cluster;
    static String ns1;
    static String ns2;
    static EchoServer echo;
    static ServerSocket sink;
    static Identities meshIds;
    static Identities foreignIds;
    static RawHboneClient raw;
    static Process agent1;
    static Process agent2;

    @BeforeAll
    static void start() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip");
        cluster = LocalCluster.up(SPEC);
        ns1 = cluster.node(0).netns();
        ns2 = cluster.node(1).netns();
        assertThat(List.of(cluster.node(1).address(), cluster.pod("pod-b").ip())).as("the addresses this test names")
                .containsExactly(HBONE2.getHostString(), ECHO.getHostString());
        Path state = dir.resolve("state.yaml");
        Files.writeString(state, """
                resources:
                  - name: n1
                    node: {name: n1, addresses: [10.176.0.11]}
                  - name: n2
                    node: {name: n2, addresses: [10.176.0.12]}
                  - name: pod-a
                    workload: {uid: pod-a, name: pod-a, namespace: default, serviceAccount: client,
                               trustDomain: cluster.local, node: n1, addresses: [10.177.0.10],
                               tunnelProtocol: TUNNEL_HBONE, workloadName: client}
                  - name: pod-b
                    workload: {uid: pod-b, name: pod-b, namespace: default, serviceAccount: server,
                               trustDomain: cluster.local, node: n2, addresses: [10.177.1.10],
                               tunnelProtocol: TUNNEL_HBONE, workloadName: echo}
                """);
        Path ca = dir.resolve("ca");
        String podB = cluster.pod("pod-b").netns();
        echo = in(podB, () -> new EchoServer(ECHO));
        sink = in(podB, () -> new ServerSocket(SINK.getPort(), 50, SINK.getAddress()));
        Thread.ofVirtual().start(NodeNetnsE2eTest::serveSink);
        // The first agent creates the CA directory; the second loads it (one trust domain).
        agent1 = agent(cluster.node(0), dir.resolve("n1.log"), "--node", "n1", "--state", state.toString(), "--ca-dir",
                ca.toString(), "--socks5-workload", "pod-a", "--workers", "1");
        await().atMost(Duration.ofSeconds(60)).until(() -> PodApps.read(dir.resolve("n1.log"))
                .contains("node agent for n1 ready"));
        agent2 = agent(cluster.node(1), dir.resolve("n2.log"), "--node", "n2", "--state", state.toString(), "--ca-dir",
                ca.toString(), "--workers", "1", "--drain-timeout", "PT30S");
        await().atMost(Duration.ofSeconds(60)).until(() -> PodApps.read(dir.resolve("n2.log"))
                .contains("node agent for n2 ready"));
        // Credentials of a third party: one from the mesh CA (as a real client agent), one from a CA
        // the agents do not trust (it still trusts the mesh's roots, so only the server can refuse).
        CertificateAuthority mesh = CertificateAuthority.createOrLoad(ca, CaSettings.of("cluster.local",
                NodeAuthorizer.unrestricted()));
        meshIds = Identities.local(mesh, "n1");
        CertificateAuthority other = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
                NodeAuthorizer.unrestricted()));
        foreignIds = Identities.create("cluster.local", Identities.localSigner(other, "n1"), mesh::bundle);
        raw = new RawHboneClient();
    }

    /** The sink workload: each connection is read to EOF, answered with {@link #REPLY} bytes, closed. */
    static void serveSink() {
        while (!sink.isClosed()) {
            try {
                Socket s = sink.accept();
                Thread.ofVirtual().start(() -> {
                    try (s) {
                        s.getInputStream().transferTo(OutputStream.nullOutputStream());
                        s.getOutputStream().write(new byte[REPLY]);
                    } catch (IOException e) {
                        // the client went away: nothing to answer
                    }
                });
            } catch (IOException e) {
                return; // closed at the end of the tests
            }
        }
    }

    @AfterAll
    static void stop() throws Exception {
        // Reap the agents before the cluster removes their cgroups: a killed JVM that is not yet
        // waited for keeps its cgroup busy.
        for (Process agent : new Process[]{agent1, agent2}) {
            if (agent != null) {
                agent.destroyForcibly().waitFor(20, TimeUnit.SECONDS);
            }
        }
        Closing.inOrder(echo, sink, raw, meshIds, foreignIds);
        PodApps.down(cluster, CLUSTER);
    }

    /** Runs {@code body} on a platform thread that has entered {@code netns}; its sockets stay there. */
    static <T> T in(String netns, Callable<T> body) throws Exception {
        return Netns.call(netns, body, Duration.ofSeconds(120));
    }

    /**
     * Starts {@code wisp node args…} on {@code node} as a child JVM (its output to {@code log}) with
     * Netty's leak detector at its paranoid level, as in the unit tests. The command execs the JVM,
     * so the process's pid is the JVM's ({@link #jcmd}).
     */
    static Process agent(LocalCluster.Node node, Path log, String... args) throws IOException {
        List<String> wisp = new ArrayList<>(List.of("node"));
        wisp.addAll(List.of(args));
        return cluster.onNode(node, PodApps.wisp(List.of("-Xmx512m", "-Dio.netty.leakDetection.level=paranoid"),
                wisp)).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    /** {@code jcmd PID COMMAND} with the JDK that runs the tests (and the agents); its output. */
    static String jcmd(Process jvm, String command) throws Exception {
        Path java = Path.of(ProcessHandle.current().info().command().orElseThrow());
        Process p = new ProcessBuilder(java.resolveSibling("jcmd").toString(), String.valueOf(jvm.pid()), command)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0).as("jcmd " + command + ": " + out).isTrue();
        return out;
    }

    static Socket tunnel() throws Exception {
        Socks5Client.Result r = in(ns1, () -> Socks5Client.connect(SOCKS, ECHO));
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        return r.socket();
    }

    @Test
    @Order(1)
    void oneGibThroughSocks5ArrivesIntactAndTheServerSideLogsTheClientIdentity() throws Exception {
        long size = 1L << 30;
        RoundTrip trip = RoundTrip.echo(tunnel(), size, 300);
        assertThat(trip.bytesReceived()).isEqualTo(size);
        assertThat(trip.received()).isEqualTo(trip.sent());
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(PodApps.read(dir.resolve("n2.log")))
                .containsPattern("connection complete direction=inbound .*src.identity=\"" + CLIENT_ID
                        + "\".*bytes_recv=" + size));
    }

    @Test
    @Order(2)
    void thousandConcurrentConnectionsUseAtMostTenTlsConnections() throws Exception {
        List<Socket> open = new ArrayList<>();
        try (var exec = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Socket>> fs = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                fs.add(exec.submit(NodeNetnsE2eTest::tunnel));
            }
            for (Future<Socket> f : fs) {
                open.add(f.get(120, TimeUnit.SECONDS));
            }
            for (Socket s : open) {
                s.getOutputStream().write(9);
            }
            for (Socket s : open) {
                assertThat(s.getInputStream().read()).isEqualTo(9);
            }
            String dump = InNetns.httpGet(ns1, 15000, "/config_dump");
            int pool = Integer.parseInt(dump.replaceAll("(?s).*\"hbone_pool_connections\": (\\d+).*", "$1"));
            assertThat(pool).isBetween(1, 10);
            String metrics = InNetns.httpGet(ns2, METRICS2, "/metrics");
            double server = Double.parseDouble(metrics.replaceAll("(?s).*\\nwisp_hbone_server_connections (\\S+).*",
                    "$1"));
            assertThat(server).isBetween(1.0, 10.0);
        } finally {
            for (Socket s : open) {
                s.close();
            }
        }
    }

    static final String[] TCP_COUNTERS = {"istio_tcp_connections_opened", "istio_tcp_connections_closed",
            "istio_tcp_received_bytes", "istio_tcp_sent_bytes"};

    /** The label set every connection of these tests has, as the agent reporting as {@code reporter} writes it. */
    static Map<String, String> labels(String reporter) {
        Map<String, String> m = new TreeMap<>();
        m.put("reporter", reporter);
        m.put("source_workload", "client");
        m.put("source_workload_namespace", "default");
        m.put("source_principal", CLIENT_ID);
        m.put("source_app", "unknown");
        m.put("source_version", "unknown");
        m.put("destination_workload", "echo");
        m.put("destination_workload_namespace", "default");
        m.put("destination_principal", SERVER_ID);
        m.put("destination_app", "unknown");
        m.put("destination_version", "unknown");
        m.put("destination_service", "unknown");
        m.put("destination_service_name", "unknown");
        m.put("destination_service_namespace", "unknown");
        m.put("request_protocol", "tcp");
        m.put("response_flags", "-");
        m.put("connection_security_policy", "mutual_tls");
        return m;
    }

    private static final Pattern SAMPLE = Pattern.compile("^(\\w+)\\{(.*)\\} (\\S+)$");
    private static final Pattern LABEL = Pattern.compile("(\\w+)=\"([^\"]*)\",?");

    /**
     * The four {@code istio_tcp_*} counters of the series whose label set is exactly {@code labels},
     * as scraped from {@code :15020/metrics} (0 where the series does not exist yet).
     */
    static double[] tcpCounters(String netns, InetSocketAddress metrics, Map<String, String> labels)
            throws Exception {
        double[] out = new double[TCP_COUNTERS.length];
        for (String line : InNetns.httpGet(netns, metrics, "/metrics").split("\n")) {
            Matcher m = SAMPLE.matcher(line);
            if (!m.matches()) {
                continue;
            }
            Map<String, String> seen = new TreeMap<>();
            Matcher l = LABEL.matcher(m.group(2));
            while (l.find()) {
                seen.put(l.group(1), l.group(2));
            }
            for (int i = 0; i < TCP_COUNTERS.length; i++) {
                if (m.group(1).equals(TCP_COUNTERS[i] + "_total") && seen.equals(labels)) {
                    out[i] += Double.parseDouble(m.group(3));
                }
            }
        }
        return out;
    }

    @Test
    @Order(3)
    void istioTcpCountersOnBothAgentsEqualWhatWasSentByLabel() throws Exception {
        record Agent(String netns, InetSocketAddress metrics, Map<String, String> labels) {}
        List<Agent> agents = List.of(new Agent(ns1, METRICS1, labels("source")), new Agent(ns2, METRICS2,
                labels("destination")));
        // Connections of earlier tests may still be closing: start from a quiet mesh.
        for (Agent a : agents) {
            await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).until(() -> {
                double[] c = tcpCounters(a.netns(), a.metrics(), a.labels());
                return c[0] == c[1];
            });
        }
        List<double[]> before = new ArrayList<>();
        for (Agent a : agents) {
            before.add(tcpCounters(a.netns(), a.metrics(), a.labels()));
        }
        int n = 25;
        int request = 30_000;
        for (int i = 0; i < n; i++) {
            Socks5Client.Result r = in(ns1, () -> Socks5Client.connect(SOCKS, SINK));
            try (Socket s = r.socket()) {
                assertThat(r.reply()).isZero();
                s.getOutputStream().write(new byte[request]);
                s.shutdownOutput();
                assertThat(s.getInputStream().readAllBytes()).hasSize(REPLY);
            }
        }
        // Received = client → workload, sent = workload → client, at both ends (Istio's meaning).
        double[] expected = {n, n, (double) n * request, (double) n * REPLY};
        for (int a = 0; a < agents.size(); a++) {
            Agent agent = agents.get(a);
            double[] from = before.get(a);
            await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(200)).untilAsserted(() -> {
                double[] now = tcpCounters(agent.netns(), agent.metrics(), agent.labels());
                for (int i = 0; i < TCP_COUNTERS.length; i++) {
                    assertThat(now[i] - from[i]).as(agent.labels().get("reporter") + " " + TCP_COUNTERS[i])
                            .isEqualTo(expected[i]);
                }
            });
        }
    }

    static Http2Headers connect(String authority) {
        return new DefaultHttp2Headers().method("CONNECT").authority(authority);
    }

    static Stream<Arguments> malformedRequests() {
        return Stream.of(
                Arguments.of("GET instead of CONNECT", new DefaultHttp2Headers().method("GET").scheme("https")
                        .path("/").authority("10.177.1.10:9000"), "400"),
                Arguments.of("POST instead of CONNECT", new DefaultHttp2Headers().method("POST").scheme("https")
                        .path("/x").authority("10.177.1.10:9000"), "400"),
                Arguments.of("authority is a host name", connect("echo.default:9000"), "400"),
                Arguments.of("authority without port", connect("10.177.1.10"), "400"),
                Arguments.of("authority port out of range", connect("10.177.1.10:70000"), "400"),
                Arguments.of("authority is junk", connect("[::1:80"), "400"),
                Arguments.of("foreign authority: a workload of another node", connect("10.177.0.10:9000"), "400"),
                Arguments.of("authority is an agent port", connect("10.177.1.10:15008"), "400"),
                Arguments.of("unknown workload", connect("10.255.0.1:80"), "503"),
                Arguments.of("known workload, nothing listening", connect("10.177.1.10:1"), "503"));
    }

    @ParameterizedTest(name = "{0} → {2}")
    @MethodSource("malformedRequests")
    @Order(4)
    void malformedRequestsOnTheHbonePortGetTheirAnswer(String name, Http2Headers headers, String status)
            throws Exception {
        SslContext tls = new HboneTls(meshIds).client(SpiffeId.parse(CLIENT_ID), List.of(N2_ID));
        assertThat(in(ns1, () -> raw.request(tls, HBONE2, headers))).isEqualTo(status);
        stillServes();
    }

    /** Whether node 2's agent closes a TLS connection (a valid client certificate) after {@code bytes}. */
    static boolean closedAfter(byte[]... bytes) throws Exception {
        SslContext tls = new HboneTls(meshIds).client(SpiffeId.parse(CLIENT_ID), List.of(N2_ID));
        Channel ch = in(ns1, () -> raw.tls(tls, HBONE2));
        return raw.closedAfter(ch, Unpooled.wrappedBuffer(bytes));
    }

    @Test
    @Order(5)
    void garbageAfterTheHandshakeClosesTheConnection() throws Exception {
        byte[] junk = new byte[4096];
        new Random(1).nextBytes(junk);
        assertThat(closedAfter(junk)).isTrue();
        stillServes();
    }

    @Test
    @Order(5)
    void garbageFramesAfterAValidPrefaceCloseTheConnection() throws Exception {
        byte[] preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
        // A frame header announcing 16 MiB of an unknown type on stream 1, then noise.
        byte[] frame = {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x77, 0, 0, 0, 0, 1, 1, 2, 3};
        assertThat(closedAfter(preface, frame)).isTrue();
        stillServes();
    }

    @Test
    @Order(5)
    void aClientCertificateFromAnotherCaIsRefused() throws Exception {
        SslContext foreign = new HboneTls(foreignIds).client(SpiffeId.parse(CLIENT_ID), List.of(N2_ID));
        // TLS 1.3: the server judges the client certificate after the client's side of the handshake
        // completed, so the refusal shows as a failed handshake or a close before any answer.
        long accepted = echo.accepted();
        String outcome;
        try {
            outcome = in(ns1, () -> raw.request(foreign, HBONE2, connect("10.177.1.10:9000")));
        } catch (Exception e) {
            outcome = "handshake failed";
        }
        assertThat(outcome).isIn("closed", "handshake failed");
        assertThat(echo.accepted()).as("nothing reached the workload").isEqualTo(accepted);
        stillServes();
    }

    @Test
    @Order(5)
    void plaintextHttp11IsClosed() throws Exception {
        // What came back before the end, and how it ended: "EOF" or "reset"; a read that times out
        // (the agent kept the connection open) throws and fails the test.
        String outcome = in(ns1, () -> {
            try (Socket s = new Socket()) {
                s.connect(HBONE2, 5000);
                s.setSoTimeout(10_000);
                s.getOutputStream().write("GET / HTTP/1.1\r\nHost: 10.176.0.12\r\n\r\n".getBytes(
                        StandardCharsets.US_ASCII));
                java.io.ByteArrayOutputStream answered = new java.io.ByteArrayOutputStream();
                InputStream in = s.getInputStream();
                byte[] buf = new byte[1024];
                try {
                    for (int n; (n = in.read(buf)) >= 0;) {
                        answered.write(buf, 0, n);
                    }
                    return new String(answered.toByteArray(), StandardCharsets.ISO_8859_1) + "|EOF";
                } catch (SocketException e) {
                    return new String(answered.toByteArray(), StandardCharsets.ISO_8859_1) + "|reset";
                }
            }
        });
        // Whatever the TLS layer answered (an alert at most, never an HTTP response), the connection ended.
        assertThat(outcome).matches("(?s).*\\|(EOF|reset)").doesNotContain("HTTP/");
        stillServes();
    }

    /** Last but one: after everything above, neither agent's paranoid leak detector reported a buffer. */
    @Test
    @Order(6)
    void noBufferLeakedInEitherAgent() throws Exception {
        for (Process agent : List.of(agent1, agent2)) {
            assertThat(jcmd(agent, "VM.system_properties")).as("leak detection in the agent")
                    .contains("io.netty.leakDetection.level=paranoid");
        }
        // A leak is reported when a tracked buffer was collected unreleased and a later allocation
        // polls the detector's queue: collect, then allocate (traffic), a few times.
        for (int i = 0; i < 3; i++) {
            for (Process agent : List.of(agent1, agent2)) {
                jcmd(agent, "GC.run");
            }
            stillServes();
        }
        assertThat(PodApps.read(dir.resolve("n1.log"))).doesNotContain("LEAK:");
        assertThat(PodApps.read(dir.resolve("n2.log"))).doesNotContain("LEAK:");
    }

    /** A real tunnel through the agents still works. */
    static void stillServes() throws Exception {
        try (Socket s = tunnel()) {
            s.getOutputStream().write("ping".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            assertThat(new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII)).isEqualTo("ping");
        }
    }

    /** Last: it stops agent 2. */
    @Test
    @Order(9)
    void sigtermDrainsOpenStreamsThenExits() throws Exception {
        try (Socket s = tunnel()) {
            DataInputStream in = new DataInputStream(s.getInputStream());
            s.getOutputStream().write(new byte[4096]);
            in.readFully(new byte[4096]);
            agent2.destroy(); // SIGTERM
            await().atMost(Duration.ofSeconds(20)).until(() -> PodApps.read(dir.resolve("n2.log"))
                    .contains("draining"));
            assertThat(agent2.isAlive()).as("still draining an open stream").isTrue();
            s.getOutputStream().write(new byte[100_000]);
            in.readFully(new byte[100_000]);
            s.shutdownOutput();
            assertThat(in.read()).isEqualTo(-1);
            assertThat(agent2.waitFor(30, TimeUnit.SECONDS)).as("agent exits once the stream ended").isTrue();
        }
        assertThat(in(ns1, () -> Socks5Client.connect(SOCKS, ECHO)).reply()).isNotZero();
    }
}
