package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.testing.EchoServer;
import dev.wisp.local.InNetns;
import dev.wisp.testing.RawHboneClient;
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
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
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
 * Two node agents ({@code wisp node}, each a child JVM in its own network namespace) carry a SOCKS5
 * client on node 1 to workloads on node 2 over HBONE: issue 3's "Must show" items (the policy item
 * runs on the control plane, {@code e2e/…/ControlPlaneMeshE2eTest}, since a standalone agent's state
 * file is read once). Hostile input on node 2's HBONE port comes from this test, a third party in
 * node 1's namespace. Both agents run with Netty's paranoid leak detector.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NodeNetnsE2eTest {
    static final InetSocketAddress ECHO = new InetSocketAddress("10.77.2.10", 9000);
    /** On pod-b: reads to EOF, then answers {@link #REPLY} bytes (so each direction's count differs). */
    static final InetSocketAddress SINK = new InetSocketAddress("10.77.2.10", 9001);
    static final int REPLY = 5_000;
    static final InetSocketAddress SOCKS = new InetSocketAddress("127.0.0.1", 15080);
    static final InetSocketAddress HBONE2 = new InetSocketAddress("10.77.0.2", 15008);
    static final InetSocketAddress METRICS1 = new InetSocketAddress("10.77.0.1", 15020);
    static final InetSocketAddress METRICS2 = new InetSocketAddress("10.77.0.2", 15020);
    static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    static final String SERVER_ID = "spiffe://cluster.local/ns/default/sa/server";
    static final SpiffeId N2_ID = IdentityProvider.nodeId("cluster.local", "n2");
    @TempDir
    static Path dir;
    static TwoNodeNetns net;
    static EchoServer echo;
    static ServerSocket sink;
    static Identities meshIds;
    static Identities foreignIds;
    static RawHboneClient raw;
    static Process agent1;
    static Process agent2;

    @BeforeAll
    static void start() throws Exception {
        net = new TwoNodeNetns();
        Path state = dir.resolve("state.yaml");
        Files.writeString(state, """
                resources:
                  - name: n1
                    node: {name: n1, addresses: [10.77.0.1]}
                  - name: n2
                    node: {name: n2, addresses: [10.77.0.2]}
                  - name: pod-a
                    workload: {uid: pod-a, name: pod-a, namespace: default, serviceAccount: client,
                               trustDomain: cluster.local, node: n1, addresses: [10.77.1.10],
                               tunnelProtocol: TUNNEL_HBONE, workloadName: client}
                  - name: pod-b
                    workload: {uid: pod-b, name: pod-b, namespace: default, serviceAccount: server,
                               trustDomain: cluster.local, node: n2, addresses: [10.77.2.10],
                               tunnelProtocol: TUNNEL_HBONE, workloadName: echo}
                """);
        Path ca = dir.resolve("ca");
        echo = TwoNodeNetns.in(net.ns2, () -> new EchoServer(ECHO));
        sink = TwoNodeNetns.in(net.ns2, () -> new ServerSocket(SINK.getPort(), 50, SINK.getAddress()));
        Thread.ofVirtual().start(NodeNetnsE2eTest::serveSink);
        // The first agent creates the CA directory; the second loads it (one trust domain).
        agent1 = net.agent(net.ns1, dir.resolve("n1.log"), "--node", "n1", "--state", state.toString(), "--ca-dir",
                ca.toString(), "--socks5-workload", "pod-a", "--workers", "1");
        await().atMost(Duration.ofSeconds(60)).until(() -> TwoNodeNetns.log(dir.resolve("n1.log"))
                .contains("node agent for n1 ready"));
        agent2 = net.agent(net.ns2, dir.resolve("n2.log"), "--node", "n2", "--state", state.toString(), "--ca-dir",
                ca.toString(), "--workers", "1", "--drain-timeout", "PT30S");
        await().atMost(Duration.ofSeconds(60)).until(() -> TwoNodeNetns.log(dir.resolve("n2.log"))
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
        if (echo != null) {
            echo.close();
        }
        if (sink != null) {
            sink.close();
        }
        if (raw != null) {
            raw.close();
        }
        for (Identities ids : new Identities[]{meshIds, foreignIds}) {
            if (ids != null) {
                ids.close();
            }
        }
        if (net != null) {
            net.close();
        }
    }

    static Socket tunnel() throws Exception {
        Socks5Client.Result r = TwoNodeNetns.in(net.ns1, () -> Socks5Client.connect(SOCKS, ECHO));
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        return r.socket();
    }

    @Test
    @Order(1)
    void oneGibThroughSocks5ArrivesIntactAndTheServerSideLogsTheClientIdentity() throws Exception {
        long size = 1L << 30;
        MessageDigest sent = MessageDigest.getInstance("SHA-256");
        MessageDigest got = MessageDigest.getInstance("SHA-256");
        try (Socket s = tunnel(); var exec = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<Long> reader = exec.submit(() -> {
                InputStream in = s.getInputStream();
                byte[] buf = new byte[1 << 20];
                long total = 0;
                for (int n; (n = in.read(buf)) >= 0;) {
                    got.update(buf, 0, n);
                    total += n;
                }
                return total;
            });
            OutputStream out = s.getOutputStream();
            byte[] chunk = new byte[1 << 20];
            Random rnd = new Random(42);
            for (long left = size; left > 0; left -= chunk.length) {
                rnd.nextBytes(chunk);
                out.write(chunk);
                sent.update(chunk);
            }
            s.shutdownOutput();
            assertThat(reader.get(300, TimeUnit.SECONDS)).isEqualTo(size);
        }
        assertThat(HexFormat.of().formatHex(got.digest())).isEqualTo(HexFormat.of().formatHex(sent.digest()));
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(TwoNodeNetns.log(dir.resolve("n2.log")))
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
            String dump = InNetns.httpGet(net.ns1, 15000, "/config_dump");
            int pool = Integer.parseInt(dump.replaceAll("(?s).*\"hbone_pool_connections\": (\\d+).*", "$1"));
            assertThat(pool).isBetween(1, 10);
            String metrics = InNetns.httpGet(net.ns2, METRICS2, "/metrics");
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
        List<Agent> agents = List.of(new Agent(net.ns1, METRICS1, labels("source")), new Agent(net.ns2, METRICS2,
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
            Socks5Client.Result r = TwoNodeNetns.in(net.ns1, () -> Socks5Client.connect(SOCKS, SINK));
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
                        .path("/").authority("10.77.2.10:9000"), "400"),
                Arguments.of("POST instead of CONNECT", new DefaultHttp2Headers().method("POST").scheme("https")
                        .path("/x").authority("10.77.2.10:9000"), "400"),
                Arguments.of("authority is a host name", connect("echo.default:9000"), "400"),
                Arguments.of("authority without port", connect("10.77.2.10"), "400"),
                Arguments.of("authority port out of range", connect("10.77.2.10:70000"), "400"),
                Arguments.of("authority is junk", connect("[::1:80"), "400"),
                Arguments.of("foreign authority: a workload of another node", connect("10.77.1.10:9000"), "400"),
                Arguments.of("authority is an agent port", connect("10.77.2.10:15008"), "400"),
                Arguments.of("unknown workload", connect("10.255.0.1:80"), "503"),
                Arguments.of("known workload, nothing listening", connect("10.77.2.10:1"), "503"));
    }

    @ParameterizedTest(name = "{0} → {2}")
    @MethodSource("malformedRequests")
    @Order(4)
    void malformedRequestsOnTheHbonePortGetTheirAnswer(String name, Http2Headers headers, String status)
            throws Exception {
        SslContext tls = new HboneTls(meshIds).client(SpiffeId.parse(CLIENT_ID), List.of(N2_ID));
        assertThat(TwoNodeNetns.in(net.ns1, () -> raw.request(tls, HBONE2, headers))).isEqualTo(status);
        stillServes();
    }

    /** Whether node 2's agent closes a TLS connection (a valid client certificate) after {@code bytes}. */
    static boolean closedAfter(byte[]... bytes) throws Exception {
        SslContext tls = new HboneTls(meshIds).client(SpiffeId.parse(CLIENT_ID), List.of(N2_ID));
        Channel ch = TwoNodeNetns.in(net.ns1, () -> raw.tls(tls, HBONE2));
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
            outcome = TwoNodeNetns.in(net.ns1, () -> raw.request(foreign, HBONE2, connect("10.77.2.10:9000")));
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
        int n = TwoNodeNetns.in(net.ns1, () -> {
            try (Socket s = new Socket()) {
                s.connect(HBONE2, 5000);
                s.setSoTimeout(10_000);
                s.getOutputStream().write("GET / HTTP/1.1\r\nHost: 10.77.0.2\r\n\r\n".getBytes(
                        StandardCharsets.US_ASCII));
                InputStream in = s.getInputStream();
                try {
                    // Whatever the TLS layer answers (an alert at most), the connection then ends.
                    while (in.read(new byte[1024]) >= 0) {
                        // drain
                    }
                } catch (SocketException e) {
                    // a reset also counts as closed
                }
                return -1;
            }
        });
        assertThat(n).isEqualTo(-1);
        stillServes();
    }

    /** Last but one: after everything above, neither agent's paranoid leak detector reported a buffer. */
    @Test
    @Order(6)
    void noBufferLeakedInEitherAgent() throws Exception {
        for (Process agent : List.of(agent1, agent2)) {
            assertThat(TwoNodeNetns.jcmd(agent, "VM.system_properties")).as("leak detection in the agent")
                    .contains("io.netty.leakDetection.level=paranoid");
        }
        // A leak is reported when a tracked buffer was collected unreleased and a later allocation
        // polls the detector's queue: collect, then allocate (traffic), a few times.
        for (int i = 0; i < 3; i++) {
            for (Process agent : List.of(agent1, agent2)) {
                TwoNodeNetns.jcmd(agent, "GC.run");
            }
            stillServes();
        }
        assertThat(TwoNodeNetns.log(dir.resolve("n1.log"))).doesNotContain("LEAK:");
        assertThat(TwoNodeNetns.log(dir.resolve("n2.log"))).doesNotContain("LEAK:");
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
            await().atMost(Duration.ofSeconds(20)).until(() -> TwoNodeNetns.log(dir.resolve("n2.log"))
                    .contains("draining"));
            assertThat(agent2.isAlive()).as("still draining an open stream").isTrue();
            s.getOutputStream().write(new byte[100_000]);
            in.readFully(new byte[100_000]);
            s.shutdownOutput();
            assertThat(in.read()).isEqualTo(-1);
            assertThat(agent2.waitFor(30, TimeUnit.SECONDS)).as("agent exits once the stream ended").isTrue();
        }
        assertThat(TwoNodeNetns.in(net.ns1, () -> Socks5Client.connect(SOCKS, ECHO)).reply()).isNotZero();
    }
}
