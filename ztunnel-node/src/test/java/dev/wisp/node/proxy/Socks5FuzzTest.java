package dev.wisp.node.proxy;

import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.wisp.node.Fixtures;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.testing.NoLeaks;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.ReferenceCountUtil;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The SOCKS5 listener's handshake (greeting, CONNECT with IPv4, IPv6 or a name, mesh service names)
 * fed arbitrary bytes through its real pipeline ({@link Socks5#accept}) on an {@link EmbeddedChannel}
 * from loopback. The tunnel and DNS are stand-ins (nothing leaves the process): a CONNECT that gets
 * that far is answered by the outcome the input's last byte picks. Whatever arrives: no exception
 * leaves the pipeline, no buffer leaks, and every reply the server writes is a SOCKS5 message.
 */
@ExtendWith(NoLeaks.class)
class Socks5FuzzTest {
    static final InetSocketAddress CLIENT = new InetSocketAddress("127.0.0.1", 50_000);
    static PoolPeers peers;
    static ProxyContext ctx;
    static long inputs;

    @BeforeAll
    static void start() throws Exception {
        peers = PoolPeers.start();
        WorkloadIndex index = Fixtures.index(List.of(), List.of(res(workload("pod-a", "client", "n1", "127.0.0.4"))),
                List.of(Fixtures.service("echo.default.svc", "127.0.0.50", 80, 8080)));
        ctx = new ProxyContext("n1", index, new HboneTls(peers.client()), new Telemetry(), peers.transport(),
                Set.of(15080), 15008, Duration.ofSeconds(1));
    }

    @AfterAll
    static void stop() {
        peers.close();
    }

    static final class Client extends EmbeddedChannel {
        Client() {
            super(false, false);
        }

        @Override
        protected SocketAddress remoteAddress0() {
            return CLIENT;
        }
    }

    /** What a stand-in tunnel was asked for. */
    record Asked(InetSocketAddress dst, Optional<String> source) {}

    /** Runs one input; returns the destinations the handshake asked the tunnel for. */
    static List<Asked> serve(byte[] input, List<byte[]> replies) throws Exception {
        List<Asked> asked = new ArrayList<>();
        Outcome answer = switch (input.length == 0 ? 0 : input[input.length - 1] & 3) {
            case 0 -> Outcome.allowed();
            case 1 -> new Outcome.Policy("default/deny", "denied");
            case 2 -> new Outcome.NoRoute("no route");
            default -> new Outcome.Unreachable("refused");
        };
        Socks5 socks = new Socks5(ctx, (client, src, dst, source, ready) -> {
            asked.add(new Asked(dst, source.map(w -> w.getUid())));
            ready.accept(answer);
        }, host -> {
            if (host.length() % 2 == 1) {
                throw new UnknownHostException(host);
            }
            return InetAddress.ofLiteral("127.0.0.9");
        }, Runnable::run, Optional.of("pod-a"));
        Client ch = new Client();
        socks.accept(ch);
        ch.register();
        ch.writeInbound(Unpooled.wrappedBuffer(input));
        ch.runPendingTasks();
        Object o;
        while ((o = ch.readOutbound()) != null) {
            if (o instanceof ByteBuf b) {
                replies.add(ByteBufUtil.getBytes(b));
            }
            ReferenceCountUtil.release(o);
        }
        // Whatever the handshake wrote after a success belongs to the relay, which is not here.
        ch.finishAndReleaseAll();
        return asked;
    }

    @FuzzTest(maxDuration = "10s")
    void anyBytesFromAClient(byte[] input) throws Exception {
        List<byte[]> replies = new ArrayList<>();
        List<Asked> asked = serve(input, replies);
        for (byte[] r : replies) {
            assertThat(r[0]).as("SOCKS version of every reply").isEqualTo((byte) 5);
        }
        assertThat(asked).hasSizeLessThanOrEqualTo(1);
        asked.forEach(a -> assertThat(a.source()).contains("pod-a"));
        if (++inputs % 5_000 == 0) {
            NoLeaks.assertNone("the SOCKS5 listener");
        }
    }

    /** The harness reaches the tunnel: a name of a mesh service becomes its VIP. */
    @Test
    void aServiceNameReachesTheTunnelAsItsVip() throws Exception {
        byte[] name = "echo.default.svc".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        ByteBuf b = Unpooled.buffer().writeBytes(new byte[]{5, 1, 0, 5, 1, 0, 3, (byte) name.length}).writeBytes(name)
                .writeShort(80).writeByte(0);
        List<byte[]> replies = new ArrayList<>();
        List<Asked> asked = serve(ByteBufUtil.getBytes(b), replies);
        b.release();
        assertThat(asked).containsExactly(new Asked(new InetSocketAddress("127.0.0.50", 80), Optional.of("pod-a")));
        assertThat(replies.getLast()).containsExactly(5, 0, 0, 1, 0, 0, 0, 0, 0, 0);
    }
}
