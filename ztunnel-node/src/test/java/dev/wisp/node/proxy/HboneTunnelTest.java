package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.spiffe.SpiffeId;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The waypoint's HBONE client ({@link HboneTunnel}) against a server that refuses a stream as a stale
 * client certificate is refused (GOAWAY, then 421): the tunnel is opened again once, on a new
 * connection, and a second 421 is the caller's failure. A stream the server's GOAWAY did not
 * process (its ID above the GOAWAY's last, as when a client opens it while the server starts
 * draining) is opened again the same way.
 */
class HboneTunnelTest {
    static final SpiffeId WAYPOINT = SpiffeId.forServiceAccount("cluster.local", "default", "waypoint");
    static final InetSocketAddress TARGET = new InetSocketAddress("127.0.0.3", 8080);
    PoolPeers peers;
    ScriptedHboneServer server;
    HbonePool pool;
    PoolKey key;

    @BeforeEach
    void start() throws Exception {
        peers = PoolPeers.start();
        server = peers.scriptedServer(100, true, 0);
        pool = new HbonePool(peers.context("n1", WorkloadIndex.create(), Set.of(), Duration.ofSeconds(5)), 100,
                Duration.ofMinutes(5));
        key = new PoolKey(WAYPOINT, List.of(PoolPeers.SERVER_NODE), server.address());
    }

    @AfterEach
    void stop() {
        pool.close();
        server.close();
        peers.close();
    }

    Http2StreamChannel open() throws Exception {
        return HboneTunnel.open(pool, key, TARGET, () -> new ChannelHandler[]{new ChannelInboundHandlerAdapter()},
                GlobalEventExecutor.INSTANCE).get(20, TimeUnit.SECONDS);
    }

    @Test
    void a421IsRetriedOnceOnANewConnection() throws Exception {
        assertThat(open().isActive()).isTrue(); // a pooled connection, made before the refusal
        assertThat(server.accepted.get()).isEqualTo(1);
        server.misdirect.set(1);

        Http2StreamChannel stream = open();

        assertThat(stream.isActive()).as("the retry's tunnel").isTrue();
        assertThat(server.misdirected.get()).isEqualTo(1);
        assertThat(server.accepted.get()).as("the retry went to a new connection").isEqualTo(2);
        assertThat(stream.parent().remoteAddress()).isEqualTo(server.address());
        stream.close();
    }

    @Test
    void aStreamAboveTheGoAwaysLastStreamIdIsRetriedOnANewConnection() throws Exception {
        assertThat(open().isActive()).isTrue(); // stream 1, on the pooled connection
        server.leaveUnprocessed.set(1);

        Http2StreamChannel stream = open(); // stream 3 there: GOAWAY(last stream 1), no answer

        assertThat(server.unprocessed.get()).isEqualTo(1);
        assertThat(stream.isActive()).as("the retry's tunnel").isTrue();
        assertThat(server.accepted.get()).as("the retry went to a new connection").isEqualTo(2);
        assertThat(server.streams.get()).as("CONNECTs answered and open: the first and the retry").isEqualTo(2);
        stream.close();
    }

    @Test
    void aSecond421IsTheCallersFailure() throws Exception {
        server.misdirect.set(2);

        assertThatThrownBy(this::open).isInstanceOf(ExecutionException.class).cause()
                .isInstanceOf(HboneTunnel.Refused.class).hasMessage("HBONE CONNECT 127.0.0.3:8080 answered 421")
                .satisfies(e -> assertThat(((HboneTunnel.Refused) e).outcome()).isEqualTo(
                        new Outcome.UpstreamStatus(421, "HBONE CONNECT 127.0.0.3:8080 answered 421")));
        assertThat(server.misdirected.get()).as("one retry, not more").isEqualTo(2);
        assertThat(server.accepted.get()).isEqualTo(2);
    }
}
