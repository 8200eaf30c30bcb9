package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.LogCapture;
import dev.wisp.testing.RawHboneClient;
import dev.wisp.testing.Socks5Client;
import dev.wisp.node.TwoAgents;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import java.util.List;
import dev.wisp.node.tls.HboneTls;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.ssl.SslContext;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile input on the HBONE port: each case gets its answer or a closed connection, the agent keeps
 * serving real traffic afterwards, and Netty's paranoid leak detector reports nothing.
 */
class HboneServerMalformedInputTest {
    static TwoAgents mesh;
    static RawHboneClient raw;
    static SslContext client;
    static LogCapture leaks;
    static InetSocketAddress hbone;
    static final String N2 = IdentityProvider.nodeId("cluster.local", "n2");

    @BeforeAll
    static void start() throws Exception {
        leaks = new LogCapture("io.netty.util.ResourceLeakDetector");
        mesh = new TwoAgents(Duration.ofSeconds(2));
        raw = new RawHboneClient();
        client = new HboneTls(Identities.local(mesh.ca, "n1")).client(TwoAgents.CLIENT_ID, List.of(N2));
        hbone = mesh.n2.addresses().get("hbone");
    }

    @AfterAll
    static void stop() throws Exception {
        raw.close();
        mesh.close();
        leaks.close();
    }

    static Http2Headers connect(String authority) {
        return new DefaultHttp2Headers().method("CONNECT").authority(authority);
    }

    static Stream<Arguments> requests() {
        String echo = "127.0.0.3:" + mesh.echo.address().getPort();
        return Stream.of(
                Arguments.of("GET instead of CONNECT", new DefaultHttp2Headers().method("GET").scheme("https")
                        .path("/").authority(echo), "400"),
                Arguments.of("POST instead of CONNECT", new DefaultHttp2Headers().method("POST").scheme("https")
                        .path("/x").authority(echo), "400"),
                Arguments.of("authority is a host name", connect("echo.default:80"), "400"),
                Arguments.of("authority without port", connect("127.0.0.3"), "400"),
                Arguments.of("authority port out of range", connect("127.0.0.3:70000"), "400"),
                Arguments.of("authority is junk", connect("[::1:80"), "400"),
                Arguments.of("foreign authority: a workload of another node", connect("127.0.0.4:80"), "400"),
                Arguments.of("unknown workload", connect("10.255.0.1:80"), "503"),
                Arguments.of("known workload, nothing listening", connect("127.0.0.3:1"), "503"));
    }

    @ParameterizedTest(name = "{0} → {2}")
    @MethodSource("requests")
    void answers(String name, Http2Headers headers, String status) throws Exception {
        assertThat(raw.request(client, hbone, headers)).isEqualTo(status);
        stillServes();
    }

    @Test
    void garbageAfterTheHandshakeClosesTheConnection() throws Exception {
        Channel ch = raw.tls(client, hbone);
        byte[] junk = new byte[4096];
        new java.util.Random(1).nextBytes(junk);
        assertThat(raw.closedAfter(ch, Unpooled.wrappedBuffer(junk))).isTrue();
        stillServes();
    }

    @Test
    void garbageFramesAfterAValidPrefaceCloseTheConnection() throws Exception {
        Channel ch = raw.tls(client, hbone);
        byte[] preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
        // A frame header announcing 16 MiB of an unknown type on stream 1, then noise.
        byte[] frame = {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x77, 0, 0, 0, 0, 1, 1, 2, 3};
        assertThat(raw.closedAfter(ch, Unpooled.wrappedBuffer(preface, frame))).isTrue();
        stillServes();
    }

    @Test
    void aClientCertificateFromAnotherCaIsRefused() throws Exception {
        CertificateAuthority other = CertificateAuthority.inMemory(CaSettings.of("cluster.local",
                NodeAuthorizer.unrestricted()));
        SslContext foreign = new HboneTls(Identities.create("cluster.local", Identities.localSigner(other, "n1"),
                mesh.ca::bundle)).client(TwoAgents.CLIENT_ID, List.of(N2));
        // TLS 1.3: the server judges the client certificate after the client's handshake completed,
        // so the failure shows as a failed handshake or a connection closed before any answer.
        String outcome;
        try {
            outcome = raw.request(foreign, hbone, connect("127.0.0.3:" + mesh.echo.address().getPort()));
        } catch (Exception e) {
            outcome = "handshake failed";
        }
        assertThat(outcome).isIn("closed", "handshake failed");
        stillServes();
    }

    @Test
    void plaintextHttp11IsClosed() throws Exception {
        try (Socket s = new Socket()) {
            s.connect(hbone, 5000);
            s.setSoTimeout(10_000);
            s.getOutputStream().write("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            InputStream in = s.getInputStream();
            int n;
            try {
                n = in.read(new byte[1024]);
                // Whatever the TLS layer answered (an alert at most), the connection then ends.
                while (n >= 0) {
                    n = in.read(new byte[1024]);
                }
            } catch (java.net.SocketException e) {
                n = -1; // reset also counts as closed
            }
            assertThat(n).isEqualTo(-1);
        }
        stillServes();
    }

    @Test
    void noBufferLeaked() throws Exception {
        for (int i = 0; i < 3; i++) {
            System.gc();
            stillServes();
        }
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(leaks.lines())
                .noneMatch(l -> l.contains("LEAK")));
    }

    /** A real tunnel through the agents still works. */
    static void stillServes() throws Exception {
        Socks5Client.Result r = Socks5Client.connect(mesh.socks(), mesh.echo.address());
        try (Socket s = r.socket()) {
            assertThat(r.reply()).isZero();
            s.getOutputStream().write("ping".getBytes());
            s.shutdownOutput();
            assertThat(new String(s.getInputStream().readAllBytes())).isEqualTo("ping");
        }
    }
}
