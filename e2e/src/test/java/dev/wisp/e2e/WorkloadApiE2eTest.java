package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.LocalMesh;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SVIDs for applications: each node agent of a {@link LocalMesh} serves the SPIFFE Workload API to
 * its enrolled pods on a socket per pod, and attests every caller by its cgroup. java-spiffe's
 * {@code DefaultX509Source} (the spiffe module's {@code X509SourceProbe}, run with java-spiffe's own
 * class path) in a pod gets that pod's SVID; run in another pod against the first pod's socket it
 * gets nothing, and the agent says why.
 */
class WorkloadApiE2eTest {
    static final String CLUSTER = "l4svid";
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static List<String> probe;

    @BeforeAll
    static void up() throws Exception {
        probe = probeCommand();
        mesh = PodApps.up(PodApps.clientServerMesh(CLUSTER, 62, dir));
    }

    @AfterAll
    static void down() throws Exception {
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    void eachPodGetsItsOwnSvidAndNoOtherPodsSocketAnswersIt() throws Exception {
        Path client = mesh.workloadApiSocket("client");
        Path server = mesh.workloadApiSocket("server");
        await().atMost(Duration.ofSeconds(30)).until(() -> Files.exists(client) && Files.exists(server));

        String own = runProbe("client", client, 60);
        assertThat(own).as("the client pod's own socket").startsWith("svid " + mesh.spiffeId("client") + " ")
                .endsWith(" 1");
        assertThat(runProbe("server", server, 60)).as("the server pod's own socket, on the other node")
                .startsWith("svid " + mesh.spiffeId("server") + " ");

        // A process of the client pod on the server pod's socket: refused by node 2's agent, nothing read.
        assertThat(runProbe("client", server, 5)).as("another pod's socket").startsWith("failed ");
        await().atMost(Duration.ofSeconds(10)).until(() -> mesh.log("node2").contains(
                "Workload API of pod server: caller refused: pid ")
                && mesh.log("node2").contains(
                        "in cgroup /wisp/" + CLUSTER + "/pods/client is not in the pod's cgroup /wisp/" + CLUSTER
                                + "/pods/server"));
        // This test JVM is no pod's process either: it reads end of stream, not a byte.
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(client))) {
            try {
                c.write(ByteBuffer.wrap("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII)));
            } catch (IOException closedFirst) {
                // The agent refused and closed before the preface arrived (EPIPE): it read nothing either.
            }
            assertThat(firstRead(c)).as("bytes read, -1 at end of stream").isEqualTo(-1);
        }
        String metrics = OpenConnectionPolicyE2eTest.httpGet(mesh.metricsUrl("node2"));
        assertThat(metrics.lines().filter(l -> l.startsWith("wisp_workload_api_refused_total "))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.indexOf(' ') + 1))).sum()).isGreaterThanOrEqualTo(1);
    }

    /** Runs the probe in {@code pod} against {@code socket}; its result line. */
    static String runProbe(String pod, Path socket, int timeoutSeconds) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(probe);
        cmd.addAll(List.of(socket.toString(), String.valueOf(timeoutSeconds)));
        Process p = mesh.startInPod(pod, cmd);
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(timeoutSeconds + 30, TimeUnit.SECONDS)).as("probe ended").isTrue();
        return out.lines().filter(l -> l.startsWith("svid ") || l.startsWith("failed ")).findFirst()
                .orElse("no result; output: " + out);
    }

    /**
     * {@code java -cp <spiffe test classes + java-spiffe's class path> X509SourceProbe}: the class path
     * the spiffe module's build writes, so java-spiffe's gRPC never joins the agents' class path.
     */
    static List<String> probeCommand() throws IOException {
        Path spiffe = Path.of("").toAbsolutePath().getParent().resolve("spiffe").resolve("target");
        Path classpath = spiffe.resolve("java-spiffe-peer.classpath");
        if (!Files.exists(classpath)) {
            throw new IOException(classpath + " is missing: build the spiffe module first (./mvnw -pl e2e -am "
                    + "verify builds it)");
        }
        return List.of(ProcessHandle.current().info().command().orElse("java"), "-Xmx96m", "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1", "-cp", spiffe.resolve("test-classes") + ":" + Files.readString(classpath)
                        .strip(),
                "dev.wisp.spiffe.workload.X509SourceProbe");
    }

    /** What the first read of {@code c} gives: a byte count, -1 at end of stream or on a reset. */
    private static int firstRead(SocketChannel c) {
        try {
            return c.read(ByteBuffer.allocate(4096));
        } catch (IOException e) {
            return -1;
        }
    }
}
