package dev.wisp.controlplane;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.ca.v1.CertificateServiceGrpc;
import dev.wisp.api.ca.v1.TrustBundleRequest;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.testing.LogCapture;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.channels.ClosedChannelException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLHandshakeException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 12: agents' TLS handshakes with the control plane under load. A handshake that waits longer
 * than Netty's default 10 s (a starved agent, a starved control plane) must still complete, on both
 * sides, and one that fails must be counted and logged (once per reason a minute), not dropped
 * silently. The slow side is played by {@link DelayingProxy}, a TCP relay between the agent's real
 * channel ({@link ControlPlaneClient#channel}) and the real control plane, which holds back bytes for
 * {@link #SLOW} (a simulated slow peer, not a wait for a condition). On the old code (gRPC's own TLS
 * negotiation, Netty's 10 s) both slow cases fail with UNAVAILABLE.
 */
class AgentHandshakesTest {
    /** Longer than Netty's default handshake timeout of 10 s, well within {@code GrpcTls.HANDSHAKE_TIMEOUT}. */
    static final Duration SLOW = Duration.ofSeconds(13);

    @TempDir
    Path dir;
    ControlPlane cp;
    /** Closed after each test: the agents' channels, then the proxies. */
    final List<ManagedChannel> channels = new ArrayList<>();
    final List<AutoCloseable> closing = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        Path config = Files.createDirectories(dir.resolve("config"));
        Files.writeString(config.resolve("mesh.yaml"), TestMesh.YAML);
        cp = ControlPlane.start(new ControlPlane.Options(config, dir.resolve("state"),
                new InetSocketAddress("127.0.0.1", 0), new InetSocketAddress("127.0.0.1", 0)));
    }

    @AfterEach
    void stop() throws Exception {
        for (ManagedChannel c : channels) {
            c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        for (AutoCloseable c : closing) {
            c.close();
        }
        cp.close();
    }

    /** An agent's channel to {@code port}, verifying the control plane's SVID against its bundle. */
    ManagedChannel agentChannel(int port) throws IOException {
        TrustBundle bundle = TrustBundle.read("cluster.local", cp.caDir().resolve("bundle.pem"));
        ManagedChannel ch = ControlPlaneClient.channel("127.0.0.1", port, () -> bundle);
        channels.add(ch);
        return ch;
    }

    /**
     * A call without a credential: UNAUTHENTICATED proves the TLS handshake completed and gRPC ran (a
     * handshake that failed gives UNAVAILABLE).
     */
    static Status call(ManagedChannel ch) {
        StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
                () -> CertificateServiceGrpc.newBlockingStub(ch).withDeadlineAfter(90, TimeUnit.SECONDS)
                        .trustBundle(TrustBundleRequest.getDefaultInstance()));
        return e.getStatus();
    }

    double failures(String reason) {
        return cp.registry().get("wisp_controlplane_tls_handshake_failures").tag("reason", reason).counter().count();
    }

    @Test
    void aControlPlaneSlowToAnswerTheHandshakeIsWaitedFor() throws Exception {
        // The control plane's first TLS bytes reach the agent SLOW after its ClientHello: a starved control plane.
        assertSlowPeerWaitedFor(true);
    }

    @Test
    void anAgentSlowToFinishItsHandshakeIsWaitedFor() throws Exception {
        // The agent's second flight (its Finished) reaches the control plane SLOW after its ClientHello: a starved agent.
        assertSlowPeerWaitedFor(false);
    }

    void assertSlowPeerWaitedFor(boolean slowServer) throws Exception {
        DelayingProxy proxy = new DelayingProxy(cp.xdsPort(), SLOW, slowServer);
        closing.add(proxy);
        Status s = call(agentChannel(proxy.port()));
        assertThat(s.getCode()).as("%s", s).isEqualTo(Status.Code.UNAUTHENTICATED);
        assertThat(failures("timeout") + failures("closed") + failures("tls_error")).isZero();
    }

    @Test
    void failedHandshakesAreCountedAndLogged() throws Exception {
        try (LogCapture log = new LogCapture(AgentHandshakes.class)) {
            assertThat(failures("tls_error")).isZero();
            try (Socket plain = new Socket("127.0.0.1", cp.xdsPort())) {
                // Not TLS at all: HTTP/1.1 on the agents' port.
                plain.getOutputStream().write("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                plain.getOutputStream().flush();
                plain.setSoTimeout(60_000);
                while (plain.getInputStream().read() >= 0) {
                    // until the control plane closes it
                }
            }
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(failures("tls_error")).isEqualTo(1));
            try (Socket gone = new Socket("127.0.0.1", cp.xdsPort())) {
                gone.setSoLinger(true, 0);
            }
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(failures("closed")).isEqualTo(1));
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(log.lines())
                    .anySatisfy(l -> assertThat(l).contains("did not complete (tls_error)").contains("127.0.0.1"))
                    .anySatisfy(l -> assertThat(l).contains("did not complete (closed)")));
        }
    }

    @Test
    void aReasonIsLoggedOnceAMinuteAndCountedEveryTime() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        AtomicLong now = new AtomicLong();
        AgentHandshakes h = new AgentHandshakes(registry, now::get, Duration.ofSeconds(60));
        Throwable timeout = new SslHandshakeTimeoutException("handshake timed out after 60000ms");
        InetSocketAddress agent = new InetSocketAddress("10.0.0.7", 40000);
        try (LogCapture log = new LogCapture(AgentHandshakes.class)) {
            assertThat(h.failed(timeout, agent)).isTrue();
            assertThat(h.failed(timeout, agent)).isFalse();
            // Another reason has its own window.
            assertThat(h.failed(new ClosedChannelException(), agent)).isTrue();
            now.addAndGet(TimeUnit.SECONDS.toNanos(59));
            assertThat(h.failed(timeout, agent)).isFalse();
            now.addAndGet(TimeUnit.SECONDS.toNanos(2));
            assertThat(h.failed(timeout, agent)).isTrue();
            assertThat(log.lines()).hasSize(3);
            assertThat(log.lines().get(2)).contains("(timeout)").contains("10.0.0.7")
                    .contains("2 more for this reason in the last minute, not logged");
        }
        assertThat(registry.get("wisp_controlplane_tls_handshake_failures").tag("reason", "timeout").counter().count())
                .isEqualTo(4);
        assertThat(
                registry.get("wisp_controlplane_tls_handshake_failures").tag("reason", "tls_error").counter().count())
                .isZero();
    }

    @Test
    void reasons() {
        assertThat(AgentHandshakes.reason(new SslHandshakeTimeoutException("x")))
                .isEqualTo(AgentHandshakes.Reason.TIMEOUT);
        assertThat(AgentHandshakes.reason(new IOException("wrapped", new ClosedChannelException())))
                .isEqualTo(AgentHandshakes.Reason.CLOSED);
        assertThat(AgentHandshakes.reason(new SSLHandshakeException("no cipher suites in common")))
                .isEqualTo(AgentHandshakes.Reason.TLS_ERROR);
        assertThat(AgentHandshakes.reason(new IOException("Connection reset by peer")))
                .isEqualTo(AgentHandshakes.Reason.CLOSED);
        assertThatThrownBy(() -> new AgentHandshakes(new SimpleMeterRegistry(), System::nanoTime, null))
                .isInstanceOf(NullPointerException.class);
    }

    /**
     * A TCP relay to the control plane that plays a slow peer: with {@code slowServer}, it holds the
     * control plane's first bytes back for {@code delay}; otherwise it passes the agent's first bytes
     * (its ClientHello) at once and holds the rest (its Finished) back for {@code delay}. One connection
     * at a time is enough for these tests; each relay direction is a thread.
     */
    static final class DelayingProxy implements AutoCloseable {
        private final ServerSocket listener = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
        private final List<Socket> sockets = new ArrayList<>();
        private final Thread acceptor;

        DelayingProxy(int upstream, Duration delay, boolean slowServer) throws IOException {
            acceptor = Thread.ofPlatform().daemon().name("delaying-proxy").start(() -> {
                try {
                    while (true) {
                        Socket agent = listener.accept();
                        Socket server = new Socket("127.0.0.1", upstream);
                        synchronized (sockets) {
                            sockets.add(agent);
                            sockets.add(server);
                        }
                        // Chunk 0 of the agent's side is its ClientHello, chunk 1 its Finished; chunk 0 of
                        // the control plane's side is its whole first flight.
                        relay(agent, server, slowServer ? Duration.ZERO : delay, 1);
                        relay(server, agent, slowServer ? delay : Duration.ZERO, 0);
                    }
                } catch (IOException e) {
                    // closed
                }
            });
        }

        int port() {
            return listener.getLocalPort();
        }

        /** Copies {@code from} to {@code to}, holding chunk number {@code held} (a read's worth) back for {@code delay}. */
        private static void relay(Socket from, Socket to, Duration delay, int held) {
            Thread.ofPlatform().daemon().name("delaying-proxy-relay").start(() -> {
                byte[] buf = new byte[16384];
                try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                    int chunk = 0;
                    for (int n; (n = in.read(buf)) >= 0;) {
                        if (chunk == held && !delay.isZero()) {
                            // The slow peer under test: this chunk is released by a timer, not read on.
                            CountDownLatch released = new CountDownLatch(1);
                            CompletableFuture.delayedExecutor(delay.toMillis(), TimeUnit.MILLISECONDS).execute(
                                    released::countDown);
                            released.await();
                        }
                        out.write(buf, 0, n);
                        out.flush();
                        chunk++;
                    }
                } catch (IOException | InterruptedException e) {
                    // either side closed
                } finally {
                    try {
                        to.shutdownOutput();
                    } catch (IOException e) {
                        // already closed
                    }
                }
            });
        }

        @Override
        public void close() throws IOException {
            listener.close();
            synchronized (sockets) {
                for (Socket s : sockets) {
                    s.close();
                }
            }
        }
    }
}
