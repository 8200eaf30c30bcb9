package dev.wisp.node.proxy;

import static dev.wisp.node.Fixtures.node;
import dev.wisp.node.Fixtures;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.api.BugDetectors;
import com.code_intelligence.jazzer.api.SilentCloseable;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.testing.NoLeaks;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http2.DefaultHttp2FrameWriter;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The HBONE server after TLS — HTTP/2 frames, HPACK headers, CONNECT validation, {@code forwarded},
 * authorization, stream life — fed arbitrary bytes through the real pipeline
 ({@link HboneServer#http2} behind a plain loopback TCP listener of the agent's {@link Transport},
 * standing for a TLS connection from node n1's address with pod-a's client identity). Whatever
 * arrives, the server closes the connection once the client half-closes, and no buffer leaks
 * ({@link NoLeaks}, also checked every few thousand inputs while fuzzing). The agent is node n2
 * with one workload, so CONNECT to 127.0.0.3 is allowed and dials loopback only.
 */
@ExtendWith(NoLeaks.class)
class HboneServerFuzzTest {
    static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    static final String TARGET = "127.0.0.3:9";
    static final byte[] PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
    static final Duration CLOSE_WITHIN = Duration.ofSeconds(10);
    static PoolPeers peers;
    static ProxyContext ctx;
    static Channel listener;
    static InetSocketAddress server;
    static long inputs;

    @BeforeAll
    static void start() throws Exception {
        peers = PoolPeers.start();
        WorkloadIndex index = Fixtures.index(List.of(node("n1", "127.0.0.1", 15008), node("n2", "127.0.0.2", 15008)),
                List.of(res(workload("pod-a", "client", "n1", "127.0.0.4")),
                        res(workload("pod-b", "server", "n2", "127.0.0.3"))),
                List.of());
        ctx = new ProxyContext("n2", index, new HboneTls(peers.server()), new Telemetry(), peers.transport(),
                Set.of(15001, 15006, 15008), 15008, Duration.ofMillis(200));
        // The HBONE server's pipeline after TLS, on plain TCP: what arrives is what TLS would hand it.
        listener = ctx.transport().listen(new InetSocketAddress("127.0.0.2", 0), false, ch -> {
            ch.attr(HboneServer.PEER_ID).set(Optional.of(SpiffeId.parse(CLIENT_ID)));
            try {
                HboneServer.http2(ch, ctx, Duration.ofMillis(100));
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        server = (InetSocketAddress) listener.localAddress();
    }

    @AfterAll
    static void stop() {
        listener.close().syncUninterruptibly();
        peers.close();
    }

    /**
     * Feeds {@code input} to a fresh connection: with the client preface in front when the first
     * byte is even (so most inputs reach the frame parser), as-is otherwise (the preface check).
     * Then half-closes and returns what the server wrote until it closed the connection, which it
     * must do within {@link #CLOSE_WITHIN}.
     */
    static byte[] serve(byte[] input) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(server, 5_000);
            s.setSoTimeout((int) CLOSE_WITHIN.toMillis());
            OutputStream out = s.getOutputStream();
            if (input.length > 0 && (input[0] & 1) == 0) {
                out.write(PREFACE);
                out.write(input, 1, input.length - 1);
            } else {
                out.write(input);
            }
            s.shutdownOutput();
            try {
                return s.getInputStream().readAllBytes();
            } catch (SocketTimeoutException e) {
                throw new AssertionError("the HBONE server kept a half-closed connection open for " + CLOSE_WITHIN, e);
            } catch (SocketException e) {
                // A reset after the server closed with unread input: closed, as it must be.
                return new byte[0];
            }
        }
    }

    @FuzzTest(maxDuration = "10s")
    void anyBytesAfterTls(byte[] input) throws Exception {
        // Jazzer's SSRF detector: the harness dials the server (127.0.0.2), the server may dial the
        // one workload (127.0.0.3); a connection anywhere else is a finding.
        try (SilentCloseable allowed = BugDetectors.allowNetworkConnections(
                (host, port) -> host.equals("127.0.0.2") || host.equals("127.0.0.3"))) {
            serve(input);
        }
        if (++inputs % 5_000 == 0) {
            NoLeaks.assertNone("the HBONE server");
        }
    }

    /**
     * The harness reaches CONNECT handling: a well-formed request for an address that is no workload
     * of n2 is refused as such (the flow record), and the server answered with frames of its own.
     */
    @Test
    void aWellFormedConnectIsAnsweredThroughTheHarness() throws Exception {
        byte[] answer = serve(request("127.0.0.4:80", false));
        assertThat(answer.length).as("bytes the server wrote").isGreaterThan(9);
        assertThat(ctx.telemetry().flows().since(0)).anyMatch(
                f -> f.destinationAddress().equals("127.0.0.4:80") && f.verdict().equals(FlowRecord.FAILED));
    }

    /**
     * Client frames for the seed corpus: SETTINGS, then HEADERS for CONNECT {@code authority} (with a
     * {@code forwarded} claim), then DATA, optionally a RST_STREAM; the leading 0 asks {@link #serve}
     * for the preface.
     */
    static byte[] request(String authority, boolean reset) {
        DefaultHttp2FrameWriter w = new DefaultHttp2FrameWriter();
        EmbeddedChannel sink = new EmbeddedChannel(new io.netty.channel.ChannelOutboundHandlerAdapter());
        ChannelHandlerContext c = sink.pipeline().firstContext();
        Http2Headers h = new DefaultHttp2Headers().method("CONNECT").authority(authority)
                .add("forwarded", "for=\"127.0.0.4:5555\"").add("traceparent", "00-01-02-01");
        w.writeSettings(c, new Http2Settings().initialWindowSize(1 << 20), c.newPromise());
        w.writeHeaders(c, 1, h, 0, false, c.newPromise());
        w.writeData(c, 1, Unpooled.wrappedBuffer(new byte[]{'p', 'i', 'n', 'g'}), 0, false, c.newPromise());
        if (reset) {
            w.writeRstStream(c, 1, 8, c.newPromise());
        }
        sink.flush();
        ByteBuf all = Unpooled.buffer();
        all.writeByte(0);
        Object o;
        while ((o = sink.readOutbound()) != null) {
            all.writeBytes((ByteBuf) o);
            ReferenceCountUtil.release(o);
        }
        sink.finishAndReleaseAll();
        byte[] bytes = ByteBufUtil.getBytes(all);
        all.release();
        return bytes;
    }

    /** Writes the seed corpus when {@code -Dwisp.fuzz.writeSeeds=DIR} is given (run once by hand). */
    @Test
    void seedsCanBeRegenerated() throws IOException {
        String dir = System.getProperty("wisp.fuzz.writeSeeds");
        byte[] allowed = request(TARGET, false);
        assertThat(allowed.length).isGreaterThan(30);
        if (dir != null) {
            Path d = Files.createDirectories(Path.of(dir));
            Files.write(d.resolve("connect-allowed"), allowed);
            Files.write(d.resolve("connect-reset"), request(TARGET, true));
            Files.write(d.resolve("connect-unknown-workload"), request("127.0.0.4:80", false));
            Files.write(d.resolve("connect-bad-authority"), request("nope", false));
        }
    }
}
