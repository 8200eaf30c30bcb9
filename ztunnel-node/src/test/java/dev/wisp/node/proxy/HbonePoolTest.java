package dev.wisp.node.proxy;

import dev.wisp.spiffe.SpiffeId;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link HbonePool} against a real HTTP/2 server over mutual TLS ({@link ScriptedHboneServer}):
 * PING keepalive, idle release, the server's MAX_CONCURRENT_STREAMS, one connect at a time per key.
 * The pool's timers are shortened through its test-only constructor; its rules are {@link PoolCore}'s
 * (table-tested in {@code PoolCoreTest}), here they are shown on real connections.
 */
class HbonePoolTest {
    static final SpiffeId CLIENT = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/client");
    static final SpiffeId SERVER = PoolPeers.SERVER_NODE;
    static PoolPeers peers;
    static Transport transport;
    static ProxyContext ctx;
    final List<AutoCloseable> closing = new ArrayList<>();

    @BeforeAll
    static void start() {
        peers = PoolPeers.start();
        transport = peers.transport();
        ctx = new ProxyContext("n1", WorkloadIndex.create(), new HboneTls(peers.client()), new Telemetry(), transport,
                Set.of(), 15008, Duration.ofSeconds(5));
    }

    @AfterAll
    static void stop() {
        peers.close();
    }

    @AfterEach
    void closeAll() throws Exception {
        for (AutoCloseable c : closing.reversed()) {
            c.close();
        }
    }

    ScriptedHboneServer server(int maxStreams, boolean ackPings, long setupDelayMillis) throws Exception {
        var s = peers.scriptedServer(maxStreams, ackPings, setupDelayMillis);
        closing.add(s);
        return s;
    }

    HbonePool pool(Duration idle, Duration pingInterval, Duration pingTimeout) {
        return pool(Hbone.CLIENT_STREAMS_PER_CONNECTION, idle, pingInterval, pingTimeout);
    }

    HbonePool pool(int streamsPerConnection, Duration idle, Duration pingInterval, Duration pingTimeout) {
        // A fresh ProxyContext telemetry per pool: each pool registers its own gauges.
        ProxyContext c = new ProxyContext(ctx.nodeName(), ctx.index(), ctx.tls(), new Telemetry(), transport,
                Set.of(), 15008, ctx.connectTimeout());
        HbonePool p = new HbonePool(c, streamsPerConnection, idle, pingInterval, pingTimeout);
        closing.add(p);
        return p;
    }

    static PoolKey key(ScriptedHboneServer s) {
        return new PoolKey(CLIENT, List.of(SERVER), s.address());
    }

    /** Starts a CONNECT stream through the pool; completes with the stream once the server answered 200. */
    static CompletableFuture<Http2StreamChannel> connect(HbonePool pool, PoolKey key) {
        CompletableFuture<Http2StreamChannel> answered = new CompletableFuture<>();
        var promise = transport.workers.next().<Http2StreamChannel>newPromise();
        pool.open(key, new ChannelInitializer<Http2StreamChannel>() {
            @Override
            protected void initChannel(Http2StreamChannel stream) {
                stream.pipeline().addLast(new ChannelInboundHandlerAdapter() {
                    @Override
                    public void channelActive(ChannelHandlerContext c) {
                        c.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().method("CONNECT")
                                .authority("10.0.0.1:80"), false));
                        c.fireChannelActive();
                    }

                    @Override
                    public void channelRead(ChannelHandlerContext c, Object msg) {
                        if (msg instanceof Http2HeadersFrame h && "200".contentEquals(h.headers().status())) {
                            answered.complete(stream);
                        }
                        ReferenceCountUtil.release(msg);
                    }

                    @Override
                    public void channelInactive(ChannelHandlerContext c) {
                        answered.completeExceptionally(new IllegalStateException("stream closed before 200"));
                    }
                });
            }
        }, promise).addListener((Future<Http2StreamChannel> f) -> {
            if (!f.isSuccess()) {
                answered.completeExceptionally(f.cause());
            }
        });
        return answered;
    }

    static Http2StreamChannel connected(HbonePool pool, PoolKey key) throws Exception {
        return connect(pool, key).get(10, TimeUnit.SECONDS);
    }

    @Test
    void aServerThatStopsAnsweringPingsLosesTheConnectionAndTheNextStreamGoesOnANewOne() throws Exception {
        ScriptedHboneServer deaf = server(100, false, 0);
        HbonePool pool = pool(Duration.ofMinutes(5), Duration.ofMillis(200), Duration.ofMillis(600));
        Http2StreamChannel first = connected(pool, key(deaf));
        await().atMost(Duration.ofSeconds(10)).until(() -> !first.parent().isActive());
        assertThat(deaf.pingsReceived.get()).as("PINGs the server left unanswered").isPositive();
        assertThat(first.isActive()).as("its stream ended with the connection").isFalse();
        await().atMost(Duration.ofSeconds(5)).until(() -> pool.connections() == 0);

        Http2StreamChannel second = connected(pool, key(deaf));
        assertThat(second.parent()).isNotSameAs(first.parent());
        assertThat(deaf.accepted.get()).isEqualTo(2);
    }

    @Test
    void aServerRefusingOurCertificateAfterTheHandshakeIsToldWithTheChainWePresented() throws Exception {
        // The server trusts another CA: it refuses our client certificate after our side of the TLS 1.3
        // handshake completed, so the client only sees the connection close during setup.
        dev.wisp.spiffe.ca.CertificateAuthority other = dev.wisp.spiffe.ca.CertificateAuthority.inMemory(
                dev.wisp.spiffe.ca.CaSettings.of("cluster.local", dev.wisp.spiffe.ca.NodeAuthorizer.unrestricted()));
        dev.wisp.spiffe.X509Svid serverSvid = peers.server().svid(SERVER);
        ScriptedHboneServer refusing = new ScriptedHboneServer(dev.wisp.spiffe.tls.SpiffeTls.forServer(
                () -> serverSvid, other::bundle, io.netty.handler.ssl.SslProvider.OPENSSL), 100, true, 0);
        closing.add(refusing);
        HbonePool pool = pool(Duration.ofMinutes(5), Duration.ofSeconds(30), Duration.ofSeconds(5));

        Throwable failure = org.assertj.core.api.Assertions.catchThrowable(() -> connected(pool, key(refusing)));

        java.security.cert.X509Certificate ours = peers.client().svid(CLIENT).leaf();
        assertThat(failure).hasStackTraceContaining("closed during setup after the TLS handshake (did the server "
                + "refuse our certificate? we presented [" + ours.getSerialNumber().toString(16) + " issued by "
                + ours.getIssuerX500Principal().getName() + "])");
    }

    @Test
    void aServerThatAnswersPingsKeepsItsConnection() throws Exception {
        ScriptedHboneServer s = server(100, true, 0);
        HbonePool pool = pool(Duration.ofMinutes(5), Duration.ofMillis(200), Duration.ofMillis(600));
        Http2StreamChannel stream = connected(pool, key(s));
        // Five PING timeouts' worth: an acknowledged connection stays.
        await().during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(4)).until(() -> stream.parent().isActive());
        assertThat(s.pingsReceived.get()).as("PINGs sent (and answered)").isGreaterThanOrEqualTo(5);
        assertThat(connected(pool, key(s)).parent()).isSameAs(stream.parent());
        assertThat(s.accepted.get()).isEqualTo(1);
    }

    @Test
    void anIdleConnectionIsReleasedAfterTheIdleTimeoutAndABusyOneIsNot() throws Exception {
        ScriptedHboneServer s = server(100, true, 0);
        Duration idle = Duration.ofMillis(500);
        HbonePool pool = pool(idle, Duration.ofSeconds(10), Duration.ofSeconds(20));
        Http2StreamChannel stream = connected(pool, key(s));
        await().during(Duration.ofMillis(1500)).atMost(Duration.ofSeconds(2)).until(() -> s.open.size() == 1);
        stream.close().sync();
        long closedAt = System.nanoTime();
        await().atMost(Duration.ofSeconds(5)).until(() -> s.open.isEmpty());
        assertThat(Duration.ofNanos(System.nanoTime() - closedAt)).isGreaterThanOrEqualTo(idle);
        assertThat(pool.connections()).isZero();
        connected(pool, key(s));
        assertThat(s.accepted.get()).as("a new connection after the release").isEqualTo(2);
    }

    @Test
    void withOneStreamPerConnectionAndNoIdleTimeEveryStreamMakesItsOwnTlsConnection() throws Exception {
        // The setting bench/hbone uses to compare a handshake per connection with haproxy's.
        ScriptedHboneServer s = server(100, true, 0);
        HbonePool pool = pool(1, Duration.ZERO, Duration.ofSeconds(10), Duration.ofSeconds(20));
        for (int i = 1; i <= 10; i++) {
            Http2StreamChannel stream = connected(pool, key(s));
            stream.close().sync();
            assertThat(s.accepted.get()).as("TLS connections after %d sequential streams", i).isEqualTo(i);
        }
        assertThat(pool.connectionsOpened()).isEqualTo(10);
        await().atMost(Duration.ofSeconds(5)).until(() -> s.open.isEmpty());
    }

    @Test
    void theSixthConcurrentStreamOpensASecondConnectionWhenTheServerAllowsFive() throws Exception {
        ScriptedHboneServer s = server(5, true, 0);
        HbonePool pool = pool(Duration.ofMinutes(5), Duration.ofSeconds(10), Duration.ofSeconds(20));
        List<Http2StreamChannel> open = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            open.add(connected(pool, key(s)));
        }
        assertThat(s.accepted.get()).isEqualTo(1);
        assertThat(open).allMatch(x -> x.parent() == open.get(0).parent());
        open.add(connected(pool, key(s)));
        assertThat(s.accepted.get()).isEqualTo(2);
        assertThat(open.get(5).parent()).isNotSameAs(open.get(0).parent());
        // A slot freed on the first connection is reused before any third connection.
        open.get(0).close().sync();
        await().atMost(Duration.ofSeconds(5)).until(() -> s.streams.get() == 5);
        for (int i = 0; i < 4; i++) {
            open.add(connected(pool, key(s)));
        }
        assertThat(s.accepted.get()).isEqualTo(2);
        assertThat(s.maxStreamsOnOneConnection.get()).isEqualTo(5);
    }

    @Test
    void concurrentDemandOpensOneConnectionAtATimeAndNeverExceedsTheServersLimit() throws Exception {
        // Each connection waits 300 ms before its handshake: a pool that opened connections in
        // parallel for one key would have several in that state at once.
        ScriptedHboneServer s = server(5, true, 300);
        HbonePool pool = pool(Duration.ofMinutes(5), Duration.ofSeconds(10), Duration.ofSeconds(20));
        List<CompletableFuture<Http2StreamChannel>> demand = new ArrayList<>();
        for (int i = 0; i < 23; i++) {
            demand.add(connect(pool, key(s)));
        }
        CompletableFuture.allOf(demand.toArray(CompletableFuture[]::new)).get(20, TimeUnit.SECONDS);
        assertThat(s.streams.get()).isEqualTo(23);
        assertThat(s.accepted.get()).as("⌈23 / 5⌉ connections").isEqualTo(5);
        assertThat(s.maxSettingUp.get()).as("connections being opened at once").isEqualTo(1);
        assertThat(s.maxStreamsOnOneConnection.get()).isEqualTo(5);
        assertThat(pool.connections()).isEqualTo(5);
    }
}
