package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.identity.Identities;
import dev.wisp.node.proxy.HboneServer;
import dev.wisp.node.proxy.HbonePool;
import dev.wisp.node.proxy.ProxyContext;
import dev.wisp.node.proxy.StreamBytes;
import dev.wisp.node.proxy.Transport;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.waypoint.WaypointSettings;
import dev.wisp.waypoint.route.Retries;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The waypoint's upstream pool against real HBONE servers in this JVM (the agent's {@link HboneServer}
 * with the endpoint's identity, mutual TLS from the waypoint's {@link HbonePool}): behind one, a scripted
 * HTTP/1.1 server per tunnel that numbers the requests of its tunnel and can close after an answer, say
 * {@code connection: close}, or send bytes beyond its answer; behind another, an h2c server taking two
 * streams at a time. Each test counts the tunnels the endpoint saw and the pool's own series.
 */
class UpstreamPoolTest {
    static Identities ids;
    static Transport transport;
    static HbonePool pool;
    static HboneServer h1Endpoint;
    static HboneServer h2Endpoint;
    static HboneServer goAwayEndpoint;
    static final AtomicInteger goAwayTunnels = new AtomicInteger();
    /** Tunnels the waypoint ended with END_STREAM (not a reset), as the endpoints saw. */
    static final AtomicInteger endedByWaypoint = new AtomicInteger();
    /** The held requests of {@link GoAwayScript}, by path. */
    static final Map<String, GoAwayScript.Held> held = new ConcurrentHashMap<>();
    static EnvoyConfig goAwayConfig;
    static final AtomicInteger h1Tunnels = new AtomicInteger();
    static final AtomicInteger h2Tunnels = new AtomicInteger();
    static final AtomicInteger maxStreams = new AtomicInteger();
    static EnvoyConfig h1Config;
    static EnvoyConfig h2Config;
    Telemetry telemetry;
    Forwarder forwarder;
    final EventExecutor loop = GlobalEventExecutor.INSTANCE;

    static ProxyContext context(Telemetry telemetry) {
        return new ProxyContext("n1", WorkloadIndex.create(), new HboneTls(ids), telemetry, transport, Set.of(), 15008,
                Duration.ofSeconds(5));
    }

    @BeforeAll
    static void start() {
        ids = Identities.local(CertificateAuthority.inMemory(CaSettings.of(StreamedCallTest.TD,
                NodeAuthorizer.unrestricted())), "n1");
        transport = Transport.create(2);
        pool = new HbonePool(context(new Telemetry()), 100, Duration.ofMinutes(1));
        h1Endpoint = new HboneServer(context(new Telemetry()), Duration.ofSeconds(1), StreamedCallTest.ECHO,
                UpstreamPoolTest::h1Tunnel);
        h1Config = StreamedCallTest.config(h1Endpoint.bind(new InetSocketAddress("127.0.0.1", 0)));
        h2Endpoint = new HboneServer(context(new Telemetry()), Duration.ofSeconds(1), StreamedCallTest.ECHO,
                UpstreamPoolTest::h2Tunnel);
        h2Config = StreamedCallTest.config(h2Endpoint.bind(new InetSocketAddress("127.0.0.1", 0)));
        goAwayEndpoint = new HboneServer(context(new Telemetry()), Duration.ofSeconds(1), StreamedCallTest.ECHO,
                UpstreamPoolTest::goAwayTunnel);
        goAwayConfig = StreamedCallTest.config(goAwayEndpoint.bind(new InetSocketAddress("127.0.0.1", 0)));
    }

    @AfterAll
    static void stop() {
        h1Endpoint.close();
        h2Endpoint.close();
        goAwayEndpoint.close();
        pool.close();
        transport.close();
        ids.close();
    }

    @BeforeEach
    void fresh() {
        telemetry = new Telemetry();
        forwarder = new Forwarder(pool, StreamedCallTest.WAYPOINT, telemetry.registry(),
                WaypointSettings.UPSTREAM_IDLE);
        h1Tunnels.set(0);
        h2Tunnels.set(0);
        goAwayTunnels.set(0);
        endedByWaypoint.set(0);
        held.clear();
        maxStreams.set(0);
    }

    FullHttpResponse send(String path, boolean h2) throws Exception {
        return sendAsync(path, h2).get(20, TimeUnit.SECONDS);
    }

    Future<FullHttpResponse> sendAsync(String path, boolean h2) throws Exception {
        return sendAsync(forwarder, h2 ? h2Config : h1Config, path, h2);
    }

    static Future<FullHttpResponse> sendAsync(Forwarder through, EnvoyConfig config, String path, boolean h2)
            throws Exception {
        return through.send(get(path), through.pick(config, StreamedCallTest.CLUSTER), h2,
                GlobalEventExecutor.INSTANCE);
    }

    /** GET {@code path} of the echo service, without a body. */
    static FullHttpRequest get(String path) {
        FullHttpRequest r = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, path);
        r.headers().set(HttpHeaderNames.HOST, "echo.default.svc.cluster.local");
        HttpUtil.setContentLength(r, 0);
        return r;
    }

    /** A forwarder of its own whose upstream connections close after 1 s unused. */
    Forwarder shortIdle() {
        return new Forwarder(pool, StreamedCallTest.WAYPOINT, telemetry.registry(), Duration.ofSeconds(1));
    }

    static String body(FullHttpResponse r) {
        try {
            return r.content().toString(StandardCharsets.UTF_8);
        } finally {
            r.release();
        }
    }

    double counter(String name, String... tags) {
        Counter c = telemetry.registry().find(name).tags(tags).counter();
        return c == null ? 0 : c.count();
    }

    double gauge(String protocol, String state) {
        MeterRegistry r = telemetry.registry();
        Gauge g = r.find("wisp_waypoint_upstream_connections").tags("protocol", protocol, "state", state).gauge();
        return g.value();
    }

    @Test
    void twentyRequestsGoOnOneUpstreamStream() throws Exception {
        for (int i = 1; i <= 20; i++) {
            assertThat(body(send("/n", false))).isEqualTo("/n #" + i);
        }
        assertThat(h1Tunnels.get()).as("tunnels the endpoint saw").isEqualTo(1);
        assertThat(counter("wisp_waypoint_upstream_opened", "protocol", "http1")).isEqualTo(1);
        assertThat(counter("wisp_waypoint_upstream_requests", "protocol", "http1", "connection", "reused"))
                .isEqualTo(19);
        await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(gauge("http1", "idle")).isEqualTo(1));
        assertThat(gauge("http1", "busy")).isEqualTo(0);
    }

    @Test
    void aBackendConnectionCloseRetiresTheStream() throws Exception {
        assertThat(body(send("/close", false))).isEqualTo("/close #1");
        assertThat(body(send("/n", false))).as("a new stream, numbered from 1").isEqualTo("/n #1");
        assertThat(body(send("/n", false))).isEqualTo("/n #2");
        assertThat(h1Tunnels.get()).isEqualTo(2);
        assertThat(counter("wisp_waypoint_upstream_retired", "protocol", "http1", "reason", "closed")).isEqualTo(1);
    }

    @Test
    void aBackendThatClosesAfterItsAnswerDoesNotFailTheNextRequest() throws Exception {
        // The close races the next request: it may find the stream still idle, and is then sent again on a
        // new one (a GET), never answered 503.
        for (int i = 0; i < 5; i++) {
            assertThat(body(send("/drop", false))).isEqualTo(i == 0 ? "/drop #1" : "/drop #2");
            assertThat(body(send("/n", false))).as("on a new stream").isEqualTo("/n #1");
        }
        assertThat(h1Tunnels.get()).as("the first, and one after each close").isEqualTo(6);
    }

    @Test
    void bytesBeyondAnAnswerNeverReachTheNextRequest() throws Exception {
        // The endpoint sends a whole forged answer after its own: it must not become the next request's.
        assertThat(body(send("/garbled", false))).isEqualTo("/garbled #1");
        for (int i = 1; i <= 3; i++) {
            assertThat(body(send("/n", false))).isEqualTo("/n #" + i);
        }
        assertThat(h1Tunnels.get()).isEqualTo(2);
        assertThat(counter("wisp_waypoint_upstream_retired", "protocol", "http1", "reason", "error")).isEqualTo(1);
    }

    @Test
    void anAnswerThatDoesNotParseIsA502AndTheNextRequestGetsItsOwn() throws Exception {
        FullHttpResponse bad = null;
        try {
            bad = send("/junk", false);
        } catch (java.util.concurrent.ExecutionException e) {
            assertThat(e.getCause()).isInstanceOf(Forwarder.Failure.class);
            assertThat(((Forwarder.Failure) e.getCause()).status()).isEqualTo(502);
        }
        assertThat(bad).as("no answer made of junk").isNull();
        assertThat(body(send("/n", false))).isEqualTo("/n #1");
        assertThat(h1Tunnels.get()).isEqualTo(2);
    }

    @Test
    void http2RequestsShareOneConnectionUpToItsStreamLimit() throws Exception {
        for (int i = 0; i < 5; i++) {
            assertThat(body(send("/h2/" + i, true))).isEqualTo("/h2/" + i);
        }
        assertThat(h2Tunnels.get()).as("sequential requests: one connection").isEqualTo(1);
        // Six at once on a server that takes two streams at a time: three connections, each answer its own.
        List<Future<FullHttpResponse>> all = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            all.add(sendAsync("/slow/" + i, true));
        }
        for (int i = 0; i < 6; i++) {
            assertThat(body(all.get(i).get(20, TimeUnit.SECONDS))).isEqualTo("/slow/" + i);
        }
        assertThat(h2Tunnels.get()).isEqualTo(3);
        assertThat(counter("wisp_waypoint_upstream_opened", "protocol", "http2")).isEqualTo(3);
        assertThat(counter("wisp_waypoint_upstream_requests", "protocol", "http2", "connection", "new")).isEqualTo(3);
        assertThat(maxStreams.get()).as("streams open at once on one connection, at most").isEqualTo(2);
    }

    @Test
    void anIdleHttp1StreamClosesAfterTheIdleTimeoutAndTheNextRequestOpensAnother() throws Exception {
        Forwarder f = shortIdle();
        answeredThenRetiredIdle(f, h1Config, "/n", false, "/n #1");
        assertThat(gauge("http1", "busy")).isEqualTo(0);
        assertThat(body(sendAsync(f, h1Config, "/n", false).get(20, TimeUnit.SECONDS)))
                .as("numbered from 1: a new stream")
                .isEqualTo("/n #1");
        assertThat(h1Tunnels.get()).isEqualTo(2);
        assertThat(counter("wisp_waypoint_upstream_requests", "protocol", "http1", "connection", "reused"))
                .isEqualTo(0);
    }

    /** {@code path} is answered {@code expected}; then its upstream, unused, is retired as idle. */
    void answeredThenRetiredIdle(Forwarder f, EnvoyConfig config, String path, boolean h2, String expected)
            throws Exception {
        String protocol = h2 ? "http2" : "http1";
        assertThat(body(sendAsync(f, config, path, h2).get(20, TimeUnit.SECONDS))).isEqualTo(expected);
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(
                counter("wisp_waypoint_upstream_retired", "protocol", protocol, "reason", "idle")).isEqualTo(1));
        assertThat(gauge(protocol, "idle")).isEqualTo(0);
    }

    @Test
    void anIdleHttp2ConnectionClosesAfterTheIdleTimeout() throws Exception {
        Forwarder f = shortIdle();
        answeredThenRetiredIdle(f, h2Config, "/h2/a", true, "/h2/a");
        assertThat(endedByWaypoint.get()).as("the idle connection's tunnel ended with END_STREAM, not reset")
                .isEqualTo(1);
        assertThat(body(sendAsync(f, h2Config, "/h2/b", true).get(20, TimeUnit.SECONDS))).isEqualTo("/h2/b");
        assertThat(h2Tunnels.get()).as("the second request on a new connection").isEqualTo(2);
    }

    @Test
    void atMost32IdleStreamsAreKeptPerEndpoint() throws Exception {
        // 40 requests held by the endpoint until all 40 arrived: 40 streams busy at once, then all idle.
        int n = UpstreamPool.MAX_IDLE + 8;
        Script.hold(n);
        List<Future<FullHttpResponse>> all = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            all.add(sendAsync("/hold", false));
        }
        for (Future<FullHttpResponse> r : all) {
            assertThat(body(r.get(30, TimeUnit.SECONDS))).isEqualTo("/hold #1");
        }
        assertThat(h1Tunnels.get()).isEqualTo(n);
        assertThat(counter("wisp_waypoint_upstream_retired", "protocol", "http1", "reason", "overflow")).isEqualTo(8);
        assertThat(gauge("http1", "idle")).isEqualTo(UpstreamPool.MAX_IDLE);
        // The kept ones are reused: 32 more at once open no stream.
        Script.hold(UpstreamPool.MAX_IDLE);
        all.clear();
        for (int i = 0; i < UpstreamPool.MAX_IDLE; i++) {
            all.add(sendAsync("/hold", false));
        }
        for (Future<FullHttpResponse> r : all) {
            assertThat(body(r.get(30, TimeUnit.SECONDS))).isEqualTo("/hold #2");
        }
        assertThat(h1Tunnels.get()).isEqualTo(n);
        assertThat(counter("wisp_waypoint_upstream_requests", "protocol", "http1", "connection", "reused"))
                .isEqualTo(UpstreamPool.MAX_IDLE);
    }

    @Test
    void aBackendGoAwayLetsStreamsInFlightFinishAndSendsNewRequestsOnAnotherConnection() throws Exception {
        // /a1 and /a2 on one connection; the endpoint then sends GOAWAY (last stream: /a2's) and answers
        // /a1, holding /a2 until /b arrives on another connection.
        Future<FullHttpResponse> a1 = sendAsync(forwarder, goAwayConfig, "/a1", true);
        Future<FullHttpResponse> a2 = sendAsync(forwarder, goAwayConfig, "/a2", true);
        assertThat(body(a1.get(20, TimeUnit.SECONDS))).isEqualTo("/a1 on connection 1");
        assertThat(goAwayTunnels.get()).isEqualTo(1);
        // The GOAWAY came before /a1's answer on the same connection: the pool has taken it in.
        assertThat(body(sendAsync(forwarder, goAwayConfig, "/b", true).get(20, TimeUnit.SECONDS)))
                .isEqualTo("/b on connection 2");
        assertThat(body(a2.get(20, TimeUnit.SECONDS))).as("in flight under the GOAWAY's last stream: finished")
                .isEqualTo("/a2 on connection 1");
        assertThat(goAwayTunnels.get()).isEqualTo(2);
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(
                counter("wisp_waypoint_upstream_retired", "protocol", "http2", "reason", "goaway")).isEqualTo(1));
        assertThat(endedByWaypoint.get()).as("the old connection's tunnel ended with END_STREAM once it drained")
                .isEqualTo(1);
        // Nothing after it goes to the old connection.
        assertThat(body(sendAsync(forwarder, goAwayConfig, "/c", true).get(20, TimeUnit.SECONDS)))
                .isEqualTo("/c on connection 2");
        assertThat(goAwayTunnels.get()).isEqualTo(2);
    }

    @Test
    void anHttp2RequestGoesAsHttp11ToAClusterThatSaysSo() throws Exception {
        // The h1 endpoint speaks HTTP/1.1 only: the h2c preface would be junk to it.
        EnvoyConfig h1Only = withUpstream(h1Config, false);
        for (int i = 1; i <= 3; i++) {
            FullHttpResponse r = attempt(h1Only, "/n", true);
            assertThat(r.protocolVersion()).isEqualTo(HttpVersion.HTTP_1_1);
            assertThat(body(r)).as("HTTP/1.1 on one kept stream").isEqualTo("/n #" + i);
        }
        assertThat(h1Tunnels.get()).isEqualTo(1);
        assertThat(counter("wisp_waypoint_upstream_opened", "protocol", "http1")).isEqualTo(1);
        assertThat(counter("wisp_waypoint_upstream_opened", "protocol", "http2")).isEqualTo(0);
    }

    @Test
    void anHttp11RequestGoesAsHttp2ToAClusterThatSaysSoAndItsAnswerCarriesNoHttp2Headers() throws Exception {
        FullHttpResponse r = attempt(withUpstream(h2Config, true), "/h2/one", false);
        assertThat(r.headers().names()).as("nothing of Netty's stream codec (x-http2-stream-id…)")
                .noneMatch(n -> n.toLowerCase(java.util.Locale.ROOT).startsWith("x-http2"));
        assertThat(body(r)).isEqualTo("/h2/one");
        assertThat(h2Tunnels.get()).isEqualTo(1);
        // A cluster that says nothing: as the client spoke (HTTP/1.1 to the h1 endpoint).
        assertThat(body(attempt(h1Config, "/n", false))).isEqualTo("/n #1");
    }

    /** {@code config} whose cluster says HTTP/2 ({@code h2}) or HTTP/1.1, as its CDS options would. */
    static EnvoyConfig withUpstream(EnvoyConfig config, boolean h2) {
        return new EnvoyConfig(config.routes(), config.clusters(), config.endpoints(), config.authorizers(),
                Map.of(StreamedCallTest.CLUSTER, h2));
    }

    /** One request through {@link Attempts}, as a client that spoke HTTP/2 ({@code clientH2}) or HTTP/1.1. */
    FullHttpResponse attempt(EnvoyConfig config, String path, boolean clientH2) throws Exception {
        FullHttpRequest r = get(path);
        Attempts.Result a = loop.submit(() -> Attempts.run(new ClusterTries(forwarder, config,
                StreamedCallTest.CLUSTER, Retries.of(RouteAction.getDefaultInstance())), r, clientH2, loop))
                .get(20, TimeUnit.SECONDS)
                .get(20, TimeUnit.SECONDS);
        assertThat(a.response()).as(a.status() + " " + a.reason()).isNotNull();
        return a.response();
    }

    /** An HBONE tunnel to the endpoint: 200, then a scripted HTTP/1.1 server. */
    static AcceptedTunnel h1Tunnel() {
        return new AcceptedTunnel(h1Tunnels::incrementAndGet, () -> new ChannelHandler[]{new StreamBytes(),
                new HttpServerCodec(), new HttpObjectAggregator(1 << 16), new Script()});
    }

    /**
     * Answers {@code "<path> #<n>"}, n counting this tunnel's requests; {@code /close} with
     * {@code connection: close} then the end of the stream, {@code /drop} the end of the stream without
     * saying so, {@code /garbled} a forged second answer after its own, {@code /junk} no HTTP at all.
     */
    static final class Script extends SimpleChannelInboundHandler<FullHttpRequest> {
        /** {@code /hold}'s answers wait until this many came; guarded by the class. */
        private static int holding;
        private static final List<Runnable> HELD = new ArrayList<>();
        private int n;

        static synchronized void hold(int requests) {
            holding = requests;
            HELD.clear();
        }

        private static synchronized void held(Runnable answer) {
            HELD.add(answer);
            if (HELD.size() == holding) {
                HELD.forEach(Runnable::run);
                HELD.clear();
            }
        }

        @Override
        protected void channelRead0(ChannelHandlerContext c, FullHttpRequest req) {
            n++;
            String path = req.uri();
            if (path.equals("/junk")) {
                c.pipeline().context(HttpServerCodec.class).writeAndFlush(Unpooled.copiedBuffer(
                        "SSH-2.0-not-http\r\n\r\n", StandardCharsets.US_ASCII));
                return;
            }
            FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
                    Unpooled.copiedBuffer(path + " #" + n, StandardCharsets.UTF_8));
            HttpUtil.setContentLength(r, r.content().readableBytes());
            if (path.equals("/close")) {
                r.headers().set(HttpHeaderNames.CONNECTION, "close");
            }
            if (path.equals("/hold")) {
                held(() -> c.writeAndFlush(r));
                return;
            }
            var written = c.writeAndFlush(r);
            switch (path) {
                case "/close", "/drop" -> written.addListener(x -> StreamBytes.end(c.channel()));
                case "/garbled" -> c.pipeline().context(HttpServerCodec.class).writeAndFlush(Unpooled.copiedBuffer(
                        "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged", StandardCharsets.US_ASCII));
                default -> {}
            }
        }
    }

    /** An HBONE tunnel to the endpoint: 200, then an h2c server of two concurrent streams. */
    static AcceptedTunnel h2Tunnel() {
        AtomicInteger open = new AtomicInteger();
        return new AcceptedTunnel(h2Tunnels::incrementAndGet, () -> new ChannelHandler[]{new EndsWithPeer(),
                new StreamBytes(),
                Http2FrameCodecBuilder.forServer().initialSettings(Http2Settings.defaultSettings()
                        .maxConcurrentStreams(2)).build(),
                new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
                    @Override
                    protected void initChannel(Http2StreamChannel s) {
                        s.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true),
                                new HttpObjectAggregator(1 << 16), new PathAnswer());
                        maxStreams.accumulateAndGet(open.incrementAndGet(), Math::max);
                        s.closeFuture().addListener(x -> open.decrementAndGet());
                    }
                })});
    }

    /**
     * An HBONE tunnel to the endpoint: 200, then an h2c server running {@link GoAwayScript}; it ends its side
     * of the tunnel when the waypoint ends its own, as an agent does.
     */
    static AcceptedTunnel goAwayTunnel() {
        int connection = goAwayTunnels.incrementAndGet();
        return new AcceptedTunnel(() -> {}, () -> new ChannelHandler[]{new EndsWithPeer(), new StreamBytes(),
                Http2FrameCodecBuilder.forServer().build(),
                new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
                    @Override
                    protected void initChannel(Http2StreamChannel s) {
                        s.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true),
                                new HttpObjectAggregator(1 << 16), new GoAwayScript(connection));
                    }
                })});
    }

    /** Ends the stream's sending side once the peer ended its own (END_STREAM). */
    static final class EndsWithPeer extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            boolean last = msg instanceof Http2DataFrame d && d.isEndStream();
            c.fireChannelRead(msg);
            if (last) {
                endedByWaypoint.incrementAndGet();
            }
            if (last && c.channel().isActive()) {
                // From here, not the tail: the h2c codec behind would take the DATA frame for its own.
                c.writeAndFlush(new DefaultHttp2DataFrame(true));
            }
        }
    }

    /**
     * Answers {@code "<path> on connection <n>"}: holds {@code /a1} and {@code /a2}; when both came, sends
     * GOAWAY (NO_ERROR, last stream the newest: Netty's codec fills it in) on their connection, then
     * answers {@code /a1}; answers {@code /a2} after {@code /b}.
     */
    static final class GoAwayScript extends SimpleChannelInboundHandler<FullHttpRequest> {
        private final int connection;

        GoAwayScript(int connection) {
            this.connection = connection;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext c, FullHttpRequest req) {
            String path = req.uri();
            switch (path) {
                case "/a1", "/a2" -> {
                    held.put(path, new Held(c, path, connection));
                    Held a1 = held.get("/a1");
                    if (a1 != null && held.containsKey("/a2")) {
                        c.channel().parent().writeAndFlush(new DefaultHttp2GoAwayFrame(Http2Error.NO_ERROR))
                                .addListener(x -> a1.answer());
                    }
                }
                case "/b" -> {
                    new Held(c, path, connection).answer();
                    Held a2 = held.get("/a2");
                    if (a2 != null) {
                        a2.answer();
                    }
                }
                default -> new Held(c, path, connection).answer();
            }
        }

        /** A request and the connection it came on. */
        record Held(ChannelHandlerContext c, String path, int connection) {
            void answer() {
                c.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
                        Unpooled.copiedBuffer(path + " on connection " + connection, StandardCharsets.UTF_8)));
            }
        }
    }

    /** Answers its path; {@code /slow/…} after 2 s, so that requests overlap. */
    static final class PathAnswer extends SimpleChannelInboundHandler<FullHttpRequest> {
        @Override
        protected void channelRead0(ChannelHandlerContext c, FullHttpRequest req) {
            String path = req.uri();
            FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK,
                    Unpooled.copiedBuffer(path, StandardCharsets.UTF_8));
            c.executor().schedule(() -> c.writeAndFlush(r), path.startsWith("/slow") ? 2000 : 0,
                    TimeUnit.MILLISECONDS);
        }
    }
}
