package dev.wisp.node.workloadapi;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.IntFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A pod's Workload API socket over real unix sockets, this test process the caller: the pid the
 * attestation is asked about is the caller's ({@code SO_PEERCRED}); relayed bytes reach the server
 * behind the socket and come back; a refused caller reads end of stream and nothing else, and the
 * refusal is reported. (Which cgroup makes a pod's process is {@link CallerAttestationTest}'s; the
 * two together, with real pods, are {@code WorkloadApiE2eTest}'s.)
 */
class PodSocketTest {
    @TempDir
    Path dir;
    ServerSocketChannel upstream;
    Path upstreamPath;
    final List<CallerAttestation> refused = new CopyOnWriteArrayList<>();

    @BeforeEach
    void echoServer() throws IOException {
        upstreamPath = dir.resolve("server.sock");
        upstream = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        upstream.bind(UnixDomainSocketAddress.of(upstreamPath));
        Thread.ofPlatform().daemon().start(() -> {
            try {
                while (true) {
                    SocketChannel c = upstream.accept();
                    Thread.ofPlatform().daemon().start(() -> echo(c));
                }
            } catch (IOException e) {
                // closed
            }
        });
    }

    private static void echo(SocketChannel c) {
        try (c) {
            ByteBuffer b = ByteBuffer.allocate(1024);
            while (c.read(b.clear()) >= 0) {
                b.flip();
                while (b.hasRemaining()) {
                    c.write(b);
                }
            }
            c.shutdownOutput();
        } catch (IOException e) {
            // the relay went away
        }
    }

    @AfterEach
    void close() throws IOException {
        upstream.close();
    }

    @Test
    void aProcessOfThePodIsRelayedToTheServer() throws Exception {
        List<Integer> asked = new CopyOnWriteArrayList<>();
        IntFunction<CallerAttestation> attest = pid -> {
            asked.add(pid);
            return new CallerAttestation(true, "test");
        };
        try (PodSocket s = PodSocket.open("a", attest, dir.resolve("a/socket"), upstreamPath, refused::add)) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(s.socket()))).isEqualTo("rw-rw-rw-");
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(s.socket()))) {
                byte[] payload = new byte[100_000];
                for (int i = 0; i < payload.length; i++) {
                    payload[i] = (byte) (i * 31);
                }
                c.write(ByteBuffer.wrap(payload));
                c.shutdownOutput();
                assertThat(readAll(c)).isEqualTo(payload);
            }
        }
        assertThat(refused).isEmpty();
        assertThat(asked).containsExactly((int) ProcessHandle.current().pid());
        assertThat(dir.resolve("a/socket")).doesNotExist();
    }

    @Test
    void aProcessOfAnotherCgroupGetsNothing() throws Exception {
        String otherPod = "/wisp/no-such/pods/b";
        IntFunction<CallerAttestation> attest = pid -> CallerAttestation.decide(pid, Optional.of("0::/elsewhere\n"),
                otherPod);
        try (PodSocket s = PodSocket.open("b", attest, dir.resolve("b/socket"), upstreamPath, refused::add)) {
            try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(s.socket()))) {
                c.write(ByteBuffer.wrap("fetch".getBytes(StandardCharsets.US_ASCII)));
                assertThat(readAll(c)).as("not one byte for a caller of another cgroup").isEmpty();
            }
        }
        assertThat(refused).singleElement().satisfies(a -> {
            assertThat(a.allowed()).isFalse();
            assertThat(a.reason()).isEqualTo("pid " + ProcessHandle.current().pid() + " in cgroup /elsewhere is not "
                    + "in the pod's cgroup " + otherPod);
        });
    }

    private static byte[] readAll(SocketChannel c) throws IOException {
        var out = new java.io.ByteArrayOutputStream();
        ByteBuffer b = ByteBuffer.allocate(8192);
        try {
            while (c.read(b.clear()) >= 0) {
                out.write(b.array(), 0, b.position());
            }
        } catch (IOException e) {
            // a reset ends it too
        }
        return out.toByteArray();
    }
}
