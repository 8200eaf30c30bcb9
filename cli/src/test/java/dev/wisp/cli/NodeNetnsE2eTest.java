package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.testing.EchoServer;
import dev.wisp.testing.Socks5Client;
import java.io.DataInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two node agents ({@code wisp node}, each a child JVM in its own network namespace) carry a SOCKS5
 * client on node 1 to an echo workload on node 2 over HBONE.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NodeNetnsE2eTest {
    static final InetSocketAddress ECHO = new InetSocketAddress("10.77.2.10", 9000);
    static final InetSocketAddress SOCKS = new InetSocketAddress("127.0.0.1", 15080);
    static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    @TempDir
    static Path dir;
    static TwoNodeNetns net;
    static EchoServer echo;
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
        // The first agent creates the CA directory; the second loads it (one trust domain).
        agent1 = net.agent(net.ns1, dir.resolve("n1.log"), "--node", "n1", "--state", state.toString(), "--ca-dir",
                ca.toString(), "--socks5-workload", "pod-a", "--workers", "1");
        await().atMost(Duration.ofSeconds(60)).until(() -> TwoNodeNetns.log(dir.resolve("n1.log"))
                .contains("node agent for n1 ready"));
        agent2 = net.agent(net.ns2, dir.resolve("n2.log"), "--node", "n2", "--state", state.toString(), "--ca-dir",
                ca.toString(), "--workers", "1", "--drain-timeout", "PT30S");
        await().atMost(Duration.ofSeconds(60)).until(() -> TwoNodeNetns.log(dir.resolve("n2.log"))
                .contains("node agent for n2 ready"));
    }

    @AfterAll
    static void stop() throws Exception {
        if (echo != null) {
            echo.close();
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
            String dump = TwoNodeNetns.sh("ip", "netns", "exec", net.ns1, "curl", "-sf",
                    "http://127.0.0.1:15000/config_dump");
            int pool = Integer.parseInt(dump.replaceAll("(?s).*\"hbone_pool_connections\": (\\d+).*", "$1"));
            assertThat(pool).isBetween(1, 10);
            String metrics = TwoNodeNetns.sh("ip", "netns", "exec", net.ns2, "curl", "-sf",
                    "http://10.77.0.2:15020/metrics");
            double server = Double.parseDouble(metrics.replaceAll("(?s).*\\nwisp_hbone_server_connections (\\S+).*",
                    "$1"));
            assertThat(server).isBetween(1.0, 10.0);
        } finally {
            for (Socket s : open) {
                s.close();
            }
        }
    }

    /** Last: it stops agent 2. */
    @Test
    @Order(3)
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
