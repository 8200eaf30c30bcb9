package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.testing.LogCapture;
import dev.wisp.testing.RoundTrip;
import dev.wisp.testing.Socks5Client;
import dev.wisp.node.TwoAgents;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import java.io.IOException;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * The HBONE data path between two real agents on loopback (one JVM): SOCKS5 → outbound → pool →
 * TLS/HTTP2 → HBONE server → authorization → echo workload, and back. The end-to-end proofs (two
 * agents in two network namespaces: metrics by label, hostile input, leaks) are in the cli module's
 * {@code NodeNetnsE2eTest}; policy changes at run time in the e2e module's
 * {@code ControlPlaneMeshE2eTest}.
 */
class HboneLoopbackTest {
    @AutoClose
    static final LogCapture access = new LogCapture("wisp.access");
    @AutoClose
    static final TwoAgents mesh = TwoAgents.started(Duration.ofSeconds(5));

    static Socket tunnel() throws IOException {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        assertThat(r.reply()).as("SOCKS5 reply").isZero();
        return r.socket();
    }

    @Test
    void echoesThroughTheTunnelAndTheServerLogsTheClientIdentity() throws Exception {
        RoundTrip trip = RoundTrip.echo(tunnel(), 64L << 20, 120);
        assertThat(trip.bytesReceived()).isEqualTo(64L << 20);
        assertThat(trip.received()).isEqualTo(trip.sent());
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
            // The agents' channels set no ChannelOption.ALLOCATOR: their buffers come from Netty's
            // default allocator (adaptive in Netty 4.2, not the pooled one), and its metric counts
            // them. Above zero: the reading is of the allocator the stalled stream's buffers sit in.
            assertThat(ByteBufAllocator.DEFAULT).isInstanceOf(ByteBufAllocatorMetricProvider.class);
            long direct = ((ByteBufAllocatorMetricProvider) ByteBufAllocator.DEFAULT).metric().usedDirectMemory();
            assertThat(direct).isBetween(1L, 96L << 20);
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
