package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.linux.NetworkNamespace;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** {@link InNetns} and the {@link NetworkNamespace} it runs on, in a namespace of its own. */
class InNetnsTest {
    private static final String NS = "wisp-tidy-innetns";

    @BeforeAll
    static void namespace() {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip");
        Sh.tryRun(java.util.List.of("ip", "netns", "del", NS));
        Sh.run("ip", "netns", "add", NS);
        Sh.run("ip", "-n", NS, "link", "set", "lo", "up");
    }

    @AfterAll
    static void remove() {
        Sh.tryRun(java.util.List.of("ip", "netns", "del", NS));
    }

    @Test
    void codeRunsInTheNamedNamespaceAndItsSocketsStayThere() throws Exception {
        String inode = Files.readSymbolicLink(Path.of("/proc/thread-self/ns/net")).toString();
        String inside = NetworkNamespace.call(NetworkNamespace.named(NS),
                () -> Files.readSymbolicLink(Path.of("/proc/thread-self/ns/net")).toString());
        assertThat(inside).startsWith("net:[").isNotEqualTo(inode);

        try (ServerSocket server = NetworkNamespace.call(NetworkNamespace.named(NS),
                () -> new ServerSocket(0, 5, InetAddress.getLoopbackAddress()))) {
            Thread.ofVirtual().start(() -> answer(server, "HTTP/1.1 200 OK\r\n\r\nhello", 1));
            assertThat(InNetns.httpGet(NS, server.getLocalPort(), "/x")).isEqualTo("hello");
        }
    }

    @Test
    void aRefusalNamesTheNamespaceAndTheStatusLine() throws Exception {
        try (ServerSocket server = NetworkNamespace.call(NetworkNamespace.named(NS),
                () -> new ServerSocket(0, 5, InetAddress.getLoopbackAddress()))) {
            Thread.ofVirtual().start(() -> answer(server, "HTTP/1.1 404 Not Found\r\n\r\n", 1));
            assertThatThrownBy(() -> InNetns.httpGet(NS, server.getLocalPort(), "/missing"))
                    .isInstanceOf(IOException.class)
                    .hasMessage("in network namespace /run/netns/" + NS + ": GET 127.0.0.1:" + server.getLocalPort()
                            + "/missing: HTTP/1.1 404 Not Found");
        }
    }

    @Test
    void aMissingNamespaceOrASlowBodyIsAnIOExceptionNamingIt() {
        assertThatThrownBy(() -> NetworkNamespace.call(NetworkNamespace.named("wisp-tidy-absent"), () -> 1))
                .isInstanceOf(IOException.class)
                .hasMessageStartingWith("in network namespace /run/netns/wisp-tidy-absent: ");
        assertThatThrownBy(() -> NetworkNamespace.call(NetworkNamespace.named(NS), () -> {
            new java.util.concurrent.CountDownLatch(1).await(5, java.util.concurrent.TimeUnit.SECONDS);
            return 1;
        }, Duration.ofMillis(200))).isInstanceOf(IOException.class)
                .hasMessage("in network namespace /run/netns/" + NS + ": no answer within PT0.2S");
        assertThatThrownBy(() -> NetworkNamespace.named("../etc")).isInstanceOf(IllegalArgumentException.class);
    }

    private static void answer(ServerSocket server, String response, int times) {
        for (int i = 0; i < times; i++) {
            try (Socket s = server.accept()) {
                s.getInputStream().read(new byte[4096]);
                s.getOutputStream().write(response.getBytes(StandardCharsets.US_ASCII));
            } catch (IOException e) {
                return;
            }
        }
    }
}
