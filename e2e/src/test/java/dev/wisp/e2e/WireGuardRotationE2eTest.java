package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.base.Closing;
import dev.wisp.cli.Wisp;
import dev.wisp.local.LocalMesh;
import dev.wisp.testing.EchoServer;
import dev.wisp.testing.Netns;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * A WireGuard key rotation under a running TCP stream between a pod on node 1 and a pod on node 2
 * (the test's own sockets: outside the mesh, so the stream goes through the nodes' WireGuard
 * devices): {@code wisp wireguard rotate} changes node 1's key — on its device ({@code wg show}),
 * in the registry (node 2's agent receives it from the control plane) and on node 2's device — and
 * the stream goes on without a broken connection or a lost byte; the TCP retransmissions and the
 * devices' dropped packets during the run are printed for the record.
 */
class WireGuardRotationE2eTest {
    static final String CLUSTER = "wgrot";
    static final int PORT = 7100;
    static final int CHUNK = 16 * 1024;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    /** The server pod's TCP echo, started by the test. */
    static EchoServer echo;

    @BeforeAll
    static void up() throws Exception {
        mesh = PodApps.up(PodApps.clientServerMesh(CLUSTER, 54, dir), "wg");
    }

    @AfterAll
    static void down() throws Exception {
        Closing.inOrder(echo);
        PodApps.down(mesh, CLUSTER);
    }

    /**
     * One TCP connection from the client pod that sends a counting byte pattern (about 2 MB/s: the
     * machine is shared) until {@link #stop}, and checks every echoed byte.
     */
    static final class Stream {
        final AtomicLong sent = new AtomicLong();
        final AtomicLong echoed = new AtomicLong();
        volatile boolean stop;
        final CompletableFuture<String> done;

        final InetAddress server;

        Stream(String clientNs, InetAddress server) {
            this.server = server;
            done = Netns.start(clientNs, this::run);
        }

        private String run() throws Exception {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(server, PORT), 5000);
                s.setSoTimeout(30_000);
                Thread writer = Thread.ofPlatform().name("wgrot-writer").start(() -> write(s));
                InputStream in = s.getInputStream();
                byte[] buf = new byte[CHUNK];
                long at = 0;
                while (true) {
                    int n = in.read(buf);
                    if (n < 0) {
                        break;
                    }
                    for (int i = 0; i < n; i++) {
                        if (buf[i] != (byte) (at + i)) {
                            return "byte " + (at + i) + " differs";
                        }
                    }
                    at += n;
                    echoed.set(at);
                }
                writer.join(30_000);
                return at == sent.get() ? "ok" : "echoed " + at + " of " + sent.get() + " bytes";
            }
        }

        private void write(Socket s) {
            byte[] chunk = new byte[CHUNK];
            try {
                OutputStream out = s.getOutputStream();
                long at = 0;
                long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
                while (!stop && System.nanoTime() < deadline) {
                    for (int i = 0; i < CHUNK; i++) {
                        chunk[i] = (byte) (at + i);
                    }
                    out.write(chunk);
                    at += CHUNK;
                    sent.set(at);
                    // Pacing, not synchronisation: about 2 MB/s.
                    LockSupport.parkNanos(8_000_000L);
                }
                s.shutdownOutput();
            } catch (IOException e) {
                sent.set(-1);
            }
        }

        String stop() throws Exception {
            stop = true;
            return done.get(60, TimeUnit.SECONDS);
        }
    }

    static String wg(String node, String what) throws Exception {
        Process p = new ProcessBuilder("ip", "netns", "exec", mesh.node(node).netns(), "wg", "show", mesh
                .wireguardInterface(node), what).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).trim();
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        return out;
    }

    /** TCP segments retransmitted so far in {@code netns} (its /proc/net/snmp). */
    static long retransmitted(String netns) throws Exception {
        String snmp = Netns.call(netns, () -> Files.readString(Path.of("/proc/thread-self/net/snmp")), Duration
                .ofSeconds(10));
        String[] names = null;
        for (String line : snmp.split("\n")) {
            if (line.startsWith("Tcp:")) {
                String[] f = line.trim().split("\\s+");
                if (names == null) {
                    names = f;
                } else {
                    for (int i = 0; i < names.length; i++) {
                        if (names[i].equals("RetransSegs")) {
                            return Long.parseLong(f[i]);
                        }
                    }
                }
            }
        }
        throw new IllegalStateException("no Tcp RetransSegs in " + netns + "'s /proc/net/snmp");
    }

    /** What both agents logged about WireGuard and both devices' state: the story of a failed rotation. */
    static String wireGuardLines() {
        StringBuilder b = new StringBuilder();
        for (String node : List.of("node1", "node2")) {
            try {
                mesh.log(node).lines().filter(l -> l.contains("WireGuard")).forEach(l -> b.append(node).append(": ")
                        .append(l).append('\n'));
                b.append(node).append(" wg show: ").append(wg(node, "dump")).append('\n');
            } catch (Exception e) {
                b.append(node).append(": ").append(e).append('\n');
            }
        }
        return b.toString();
    }

    /** A key as {@code /config_dump} prints it: protobuf's JSON escapes base64's '=' padding. */
    static String unpadded(String key) {
        return key.replace("=", "");
    }

    static double dropped(String node) throws Exception {
        String m = MeshWireGuardE2eTest.metricsOf(mesh, node);
        return MeshWireGuardE2eTest.metric(m, "wisp_wireguard_dropped_packets_total") + MeshWireGuardE2eTest.metric(m,
                "wisp_wireguard_lane_dropped_packets_total");
    }

    @Test
    void rotationUnderATcpStreamChangesTheKeyEverywhereAndBreaksNoConnection() throws Exception {
        String clientNs = mesh.pod("client").netns();
        String serverNs = mesh.pod("server").netns();
        echo = Netns.call(serverNs, () -> new EchoServer(new InetSocketAddress(PORT)), Duration.ofSeconds(
                10));
        String before = wg("node1", "public-key");
        assertThat(before).hasSize(44);
        // The registry is there once both agents published their keys: the stream can start.
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500)).until(() -> mesh.agentAdmin(
                "node2", "/config_dump").contains(unpadded(before)));
        long retransClient = retransmitted(clientNs);
        long retransServer = retransmitted(serverNs);
        double droppedBefore = dropped("node1") + dropped("node2");
        Stream stream = new Stream(clientNs, InetAddress.ofLiteral(mesh.pod("server").ip()));
        await().atMost(Duration.ofSeconds(60)).until(() -> stream.echoed.get() > 1 << 20 || stream.done.isDone());
        assertThat(stream.done).as("the stream runs before the rotation").isNotDone();
        assertThat(wg("node2", "peers")).isEqualTo(before);

        // As an operator would: rotate node 1's key and wait until its old key is dropped.
        StringWriter out = new StringWriter();
        CommandLine cli = Wisp.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(out, true));
        long started = System.nanoTime();
        int rc = cli.execute("wireguard", "rotate", "--cluster", CLUSTER, "--node", "1", "--wait", "90");
        long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
        assertThat(rc).as(() -> out + "\n" + wireGuardLines()).isZero();
        String after = wg("node1", "public-key");
        assertThat(after).hasSize(44).isNotEqualTo(before);
        assertThat(out.toString()).contains("new public key " + after).contains("done: public key " + after);
        // The registry: the control plane sends node 1's new key to node 2, whose device's peer has it.
        assertThat(mesh.agentAdmin("node2", "/config_dump")).contains(unpadded(after)).doesNotContain(unpadded(
                before));
        assertThat(wg("node2", "peers")).isEqualTo(after);
        assertThat(mesh.agentAdmin("node1", "/wireguard")).contains("\"phase\":\"idle\"").contains(
                "\"secondary_key\":null").contains("\"public_key\":\"" + after + "\"");
        assertThat(mesh.log("node2")).contains("has a new key " + after + ": sessions kept");

        // The stream carries on over the rotated key, then ends with every byte echoed.
        long atRotation = stream.echoed.get();
        await().atMost(Duration.ofSeconds(60)).until(() -> stream.echoed.get() > atRotation + (1 << 20) || stream.done
                .isDone());
        assertThat(stream.stop()).isEqualTo("ok");
        assertThat(echo.accepted()).as("one connection carried the whole stream").isEqualTo(1);
        assertThat(stream.echoed.get()).isGreaterThan(2L << 20);
        long retrans = retransmitted(clientNs) - retransClient + retransmitted(serverNs) - retransServer;
        double droppedDuring = dropped("node1") + dropped("node2") - droppedBefore;
        System.out.printf("[wg-rotation] rotation took %d ms (publish, switch, every peer on the new key); stream %d "
                + "bytes echoed intact; TCP segments retransmitted (both pods) %d; WireGuard packets dropped (both "
                + "devices) %.0f; load %s%n", tookMs, stream.echoed.get(), retrans, droppedDuring,
                Files.readString(Path
                        .of("/proc/loadavg")).trim());
    }
}
