package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.LogCapture;
import dev.wisp.testing.Socks5Client;
import dev.wisp.node.TwoAgents;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The HBONE data path between two real agents on loopback (one JVM): SOCKS5 → outbound → pool →
 * TLS/HTTP2 → HBONE server → authorization → echo workload, and back. The end-to-end proofs (two
 * agents in two network namespaces: metrics by label, hostile input, leaks) are in the cli module's
 * {@code NodeNetnsE2eTest}; policy changes at run time in the e2e module's
 * {@code ControlPlaneMeshE2eTest}.
 */
class HboneLoopbackTest {
    static TwoAgents mesh;
    static LogCapture access;

    @BeforeAll
    static void start() throws Exception {
        access = new LogCapture("wisp.access");
        mesh = new TwoAgents(Duration.ofSeconds(5));
    }

    @AfterAll
    static void stop() throws Exception {
        mesh.close();
        access.close();
    }

    static Socket tunnel() throws IOException {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        return r.socket();
    }

    /** Sends {@code size} random bytes, half-closes, reads the echo to EOF; returns both digests. */
    static String[] roundTrip(Socket s, long size) throws Exception {
        MessageDigest sent = MessageDigest.getInstance("SHA-256");
        MessageDigest got = MessageDigest.getInstance("SHA-256");
        Future<Long> reader;
        try (var exec = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            reader = exec.submit(() -> {
                InputStream in = s.getInputStream();
                byte[] buf = new byte[256 * 1024];
                long total = 0;
                for (int n; (n = in.read(buf)) >= 0;) {
                    got.update(buf, 0, n);
                    total += n;
                }
                return total;
            });
            OutputStream out = s.getOutputStream();
            byte[] chunk = new byte[256 * 1024];
            Random rnd = new Random(size);
            for (long left = size; left > 0;) {
                rnd.nextBytes(chunk);
                int n = (int) Math.min(chunk.length, left);
                out.write(chunk, 0, n);
                sent.update(chunk, 0, n);
                left -= n;
            }
            s.shutdownOutput();
            assertThat(reader.get()).isEqualTo(size);
        }
        s.close();
        return new String[]{HexFormat.of().formatHex(sent.digest()), HexFormat.of().formatHex(got.digest())};
    }

    @Test
    void echoesThroughTheTunnelAndTheServerLogsTheClientIdentity() throws Exception {
        try (Socket s = tunnel()) {
            String[] sha = roundTrip(s, 64L << 20);
            assertThat(sha[1]).isEqualTo(sha[0]);
        }
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(access.lines())
                .anyMatch(l -> l.contains("connection complete direction=inbound")
                        && l.contains("src.identity=\"" + TwoAgents.CLIENT_ID + "\"")
                        && l.contains("bytes_recv=" + (64L << 20))));
    }

    @Test
    void halfCloseKeepsTheOtherDirectionOpen() throws Exception {
        try (Socket s = tunnel()) {
            s.getOutputStream().write("hello".getBytes());
            s.shutdownOutput();
            // The echo finishes writing after our FIN, then closes: we read everything, then EOF.
            assertThat(new String(s.getInputStream().readAllBytes())).isEqualTo("hello");
        }
    }

    @Test
    void upstreamResetReachesTheClient() throws Exception {
        mesh.echo.resetConnections(true);
        try (Socket s = tunnel()) {
            s.getOutputStream().write(1);
            IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class, () -> {
                int n = s.getInputStream().read();
                throw new IOException("read returned " + n + " instead of a reset");
            });
            assertThat(e.getMessage()).containsIgnoringCase("reset");
        } finally {
            mesh.echo.resetConnections(false);
        }
    }

    @Test
    void aSlowReaderStopsTheWriterInsteadOfGrowingMemory() throws Exception {
        mesh.echo.pause(true);
        AtomicLong written = new AtomicLong();
        try (Socket s = tunnel(); var exec = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            exec.submit(() -> {
                byte[] chunk = new byte[64 * 1024];
                try {
                    for (int i = 0; i < 16 * 1024; i++) { // up to 1 GiB
                        s.getOutputStream().write(chunk);
                        written.addAndGet(chunk.length);
                    }
                } catch (IOException e) {
                    // closed at the end of the test
                }
                return null;
            });
            long[] last = {-1};
            await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(500)).until(() -> {
                long now = written.get();
                boolean stalled = now == last[0] && now > 0;
                last[0] = now;
                return stalled;
            });
            // Two agents, each bounded by a stream window (4 MiB) plus socket and channel buffers.
            assertThat(written.get()).isLessThan(64L << 20);
            long direct = io.netty.buffer.PooledByteBufAllocator.DEFAULT.metric().usedDirectMemory();
            assertThat(direct).isLessThan(96L << 20);
            mesh.echo.pause(false);
            s.close();
        } finally {
            mesh.echo.pause(false);
        }
    }

    @Test
    void thousandConcurrentConnectionsShareAtMostTenTlsConnections() throws Exception {
        long before = mesh.n1.telemetry().registry().get("wisp_hbone_pool_connections_opened").gauge().value() > 0
                ? (long) mesh.n1.telemetry().registry().get("wisp_hbone_pool_connections_opened").gauge().value()
                : 0;
        List<Socket> open = new java.util.ArrayList<>();
        try {
            try (var exec = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
                List<Future<Socket>> fs = new java.util.ArrayList<>();
                for (int i = 0; i < 1000; i++) {
                    fs.add(exec.submit(HboneLoopbackTest::tunnel));
                }
                for (Future<Socket> f : fs) {
                    open.add(f.get());
                }
            }
            for (Socket s : open) {
                s.getOutputStream().write(7);
            }
            for (Socket s : open) {
                assertThat(s.getInputStream().read()).isEqualTo(7);
            }
            assertThat(mesh.n1.poolConnections()).isBetween(1, 10);
            double opened = mesh.n1.telemetry().registry().get("wisp_hbone_pool_connections_opened").gauge().value();
            assertThat((long) opened - before).isLessThanOrEqualTo(10);
        } finally {
            for (Socket s : open) {
                s.close();
            }
        }
    }
}
