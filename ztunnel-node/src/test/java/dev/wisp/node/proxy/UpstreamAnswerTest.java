package dev.wisp.node.proxy;

import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.Fixtures;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.FlowRecord;
import dev.wisp.testing.Socks5Client;
import io.micrometer.core.instrument.Counter;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.socksx.v5.Socks5CommandStatus;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * What the outbound side makes of the upstream agent's answer to CONNECT, through the real path
 * (SOCKS5 → {@link Outbound} → {@link HbonePool} → mutual TLS, HTTP/2 → a {@link ScriptedHboneServer}
 * answering as scripted): only a 200 that leaves the stream open is a tunnel; a 500, 502 or 503, a
 * missing {@code :status} and a 200 that ends the stream are failures, recorded as such in the flow
 * record and the closed counter's {@code response_flags}, and the SOCKS5 client never hears SUCCESS.
 */
class UpstreamAnswerTest {
    static final InetSocketAddress DESTINATION = new InetSocketAddress("127.0.0.3", 8080);
    static PoolPeers peers;
    static ScriptedHboneServer upstream;

    @BeforeAll
    static void start() throws Exception {
        peers = PoolPeers.start();
        upstream = peers.scriptedServer(100, true, 0);
    }

    @AfterAll
    static void stop() {
        upstream.close();
        peers.close();
    }

    /** One client agent (node n1, SOCKS5 standing for pod-a) whose route to pod-b goes to the scripted server. */
    record Agent(ProxyContext ctx, HbonePool pool, Outbound outbound, Socks5 socks, InetSocketAddress socksAddress)
            implements
                AutoCloseable {
        static Agent start() throws Exception {
            WorkloadIndex index = WorkloadIndex.create();
            index.apply(StateUpdates.NODE, List.of(node("n2", "127.0.0.1", upstream.address().getPort())), List.of());
            index.apply(StateUpdates.WORKLOAD, List.of(res(workload("pod-a", "client", "n1", "127.0.0.4")),
                    res(workload("pod-b", "server", "n2", "127.0.0.3"))), List.of());
            // A service whose only backend is not healthy: no route.
            index.apply(StateUpdates.SERVICE, List.of(Fixtures.service("empty.default.svc", "127.0.0.50", 80, 80)),
                    List.of());
            ProxyContext ctx = peers.context("n1", index, Set.of(), Duration.ofSeconds(5));
            HbonePool pool = new HbonePool(ctx, 100, Duration.ofMinutes(5));
            Outbound outbound = new Outbound(ctx, pool, OriginalDestinationResolver.fixed(DESTINATION));
            Socks5 socks = new Socks5(ctx, outbound, Optional.of("pod-a"));
            return new Agent(ctx, pool, outbound, socks, socks.bind(new InetSocketAddress("127.0.0.1", 0)));
        }

        double closed(String responseFlags) {
            Counter c = ctx.telemetry().registry().find("istio_tcp_connections_closed")
                    .tag("response_flags", responseFlags).counter();
            return c == null ? 0 : c.count();
        }

        @Override
        public void close() {
            socks.close();
            outbound.close();
            pool.close();
        }
    }

    @ParameterizedTest(name = "upstream answers {0} (END_STREAM {1})")
    @CsvSource(delimiter = '|', nullValues = "-", textBlock = """
            500 | false | FAILURE          | failed | UF   | HBONE CONNECT 127.0.0.3:8080 answered 500
            502 | false | FAILURE          | failed | UF   | HBONE CONNECT 127.0.0.3:8080 answered 502
            503 | false | HOST_UNREACHABLE | failed | UF   | HBONE CONNECT 127.0.0.3:8080 answered 503
            401 | false | FORBIDDEN        | denied | DENY | HBONE CONNECT 127.0.0.3:8080 answered 401
            -   | false | FAILURE          | failed | UPE  | HBONE CONNECT 127.0.0.3:8080
            200 | true  | FAILURE          | failed | UPE  | HBONE CONNECT 127.0.0.3:8080 answered 200 and ended the stream
            """)
    void anythingButAnOpen200IsRecordedAndRepliedAsWhatItIs(String status, boolean endStream, String socksReply,
            String verdict, String responseFlags, String reason) throws Exception {
        upstream.connectStatus = status;
        upstream.connectEndsStream = endStream;
        try (Agent agent = Agent.start()) {
            Socks5Client.Result r = Socks5Client.connect(agent.socksAddress(), DESTINATION);
            r.socket().close();
            assertThat(r.reply()).as("SOCKS5 reply")
                    .isEqualTo(Socks5CommandStatus.class.getField(socksReply).get(null) instanceof Socks5CommandStatus s
                            ? s.byteValue()
                            : -1);
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
                List<FlowRecord> flows = agent.ctx().telemetry().flows().since(0);
                assertThat(flows).hasSize(1);
                assertThat(flows.getFirst().verdict()).isEqualTo(verdict);
                assertThat(flows.getFirst().reason()).startsWith(reason);
                assertThat(flows.getFirst().reporter()).isEqualTo("source");
            });
            assertThat(agent.closed(responseFlags)).as("closed with response_flags=" + responseFlags).isEqualTo(1);
            assertThat(agent.closed("-")).as("closed with response_flags=-").isZero();
        } finally {
            upstream.connectStatus = "200";
            upstream.connectEndsStream = false;
        }
    }

    @Test
    void anOpen200IsTheTunnel() throws Exception {
        try (Agent agent = Agent.start()) {
            Socks5Client.Result r = Socks5Client.connect(agent.socksAddress(), DESTINATION);
            assertThat(r.reply()).as("SOCKS5 reply").isEqualTo(Socks5CommandStatus.SUCCESS.byteValue());
            r.socket().close();
            assertThat(agent.ctx().telemetry().flows().since(0)).as("still open: nothing recorded yet").isEmpty();
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            service without a healthy endpoint | 127.0.0.50:80 | NETWORK_UNREACHABLE | NR | service empty.default.svc has no healthy endpoint
            service port it does not have      | 127.0.0.50:81 | NETWORK_UNREACHABLE | NR | service empty.default.svc has no port 81
            nothing listens (plain TCP)        | 127.0.0.9:9   | HOST_UNREACHABLE    | UF | connection to /127.0.0.9:9 failed
            """)
    void theAgentsOwnRefusalsAreRepliedAndRecorded(String name, String destination, String socksReply,
            String responseFlags, String reason) throws Exception {
        try (Agent agent = Agent.start()) {
            Socks5Client.Result r = Socks5Client.connect(agent.socksAddress(), Hbone.parseAuthority(destination)
                    .orElseThrow());
            r.socket().close();
            assertThat(r.reply()).as("SOCKS5 reply")
                    .isEqualTo(((Socks5CommandStatus) Socks5CommandStatus.class.getField(socksReply).get(null))
                            .byteValue());
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
                assertThat(agent.ctx().telemetry().flows().since(0)).singleElement()
                        .satisfies(f -> assertThat(f.reason()).startsWith(reason))
                        .satisfies(f -> assertThat(f.verdict()).isEqualTo(FlowRecord.FAILED))
                        .satisfies(f -> assertThat(f.destinationAddress()).isEqualTo(destination));
                assertThat(agent.closed(responseFlags)).isEqualTo(1);
            });
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            open 200        | 200 | false | Allowed
            200, END_STREAM | 200 | true  | Malformed
            401             | 401 | false | DeniedUpstream
            500             | 500 | false | UpstreamStatus
            not a number    | 2x0 | false | Malformed
            """)
    void readsTheFirstFrame(String name, String status, boolean endStream, String variant) {
        Outcome o = Outbound.answer("10.1.1.10:8080",
                new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status(status), endStream));
        assertThat(o.getClass().getSimpleName()).isEqualTo(variant);
    }

    @Test
    void aFirstFrameThatIsNotHeadersIsMalformed() {
        DefaultHttp2DataFrame data = new DefaultHttp2DataFrame(false);
        assertThat(Outbound.answer("10.1.1.10:8080", data)).isInstanceOf(Outcome.Malformed.class);
        assertThat(Outbound.answer("10.1.1.10:8080", new DefaultHttp2HeadersFrame(new DefaultHttp2Headers())))
                .isEqualTo(new Outcome.Malformed("HBONE CONNECT 10.1.1.10:8080 answered without :status"));
        data.release();
    }
}
