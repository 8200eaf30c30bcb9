package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.wisp.node.identity.Identities;
import dev.wisp.node.proxy.HboneServer;
import dev.wisp.node.proxy.HbonePool;
import dev.wisp.node.proxy.HboneTunnel;
import dev.wisp.node.proxy.PoolKey;
import dev.wisp.node.proxy.ProxyContext;
import dev.wisp.node.proxy.StreamBytes;
import dev.wisp.node.proxy.Transport;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.waypoint.WaypointSettings;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.Endpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A gRPC call streamed through a real waypoint, all in this JVM: a client plays the client's agent
 * (HBONE with its own SVID, CONNECT to the service's VIP, h2c inside), the waypoint's
 * {@link WaypointServer} routes the call to the one endpoint, whose HBONE server (the agent's, with the
 * pod's identity) hands the tunnel to an h2c echo: each DATA frame it gets is sent back at once, and the
 * request's end ends the answer with {@code grpc-status: 0} and the byte count in a trailer. A message
 * is answered while the call is still open both ways (so nothing is read whole), and a call of 3 MiB
 * each way (three times what a whole request may hold) arrives intact.
 */
class StreamedCallTest {
    static final String TD = "cluster.local";
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount(TD, "default", "client");
    static final SpiffeId WAYPOINT = SpiffeId.forServiceAccount(TD, "default", "waypoint");
    static final SpiffeId ECHO = SpiffeId.forServiceAccount(TD, "default", "echo");
    static final InetSocketAddress VIP = new InetSocketAddress(InetAddress.ofLiteral("10.96.0.20"), 80);
    static final String CLUSTER = "outbound|80||echo.default.svc.cluster.local";

    static Identities ids;
    static Transport transport;
    static Telemetry waypointTelemetry = new Telemetry();
    static HbonePool pool;
    static WaypointServer waypoint;
    static HboneServer endpoint;
    static InetSocketAddress waypointAddress;

    static ProxyContext context(Telemetry telemetry) {
        return new ProxyContext("n1", WorkloadIndex.create(), new HboneTls(ids), telemetry, transport, Set.of(), 15008,
                Duration.ofSeconds(5));
    }

    @BeforeAll
    static void start() {
        ids = Identities.local(CertificateAuthority.inMemory(CaSettings.of(TD, NodeAuthorizer.unrestricted())), "n1");
        transport = Transport.create(2);
        pool = new HbonePool(context(new Telemetry()), 100, Duration.ofMinutes(1));
        endpoint = new HboneServer(context(new Telemetry()), Duration.ofSeconds(1), ECHO, StreamedCallTest::echoTunnel);
        InetSocketAddress node = endpoint.bind(new InetSocketAddress("127.0.0.1", 0));
        EnvoyConfig config = config(node);
        waypoint = new WaypointServer(context(waypointTelemetry), pool, WAYPOINT, () -> config, Duration.ofSeconds(1),
                WaypointSettings.UPSTREAM_IDLE);
        waypointAddress = waypoint.bind(new InetSocketAddress("127.0.0.1", 0));
    }

    @AfterAll
    static void stop() {
        waypoint.close();
        endpoint.close();
        pool.close();
        transport.close();
        ids.close();
    }

    /** One route, {@code /} to the echo's cluster, whose endpoint is reached over HBONE at {@code node}. */
    static EnvoyConfig config(InetSocketAddress node) {
        RouteConfiguration routes = RouteConfiguration.newBuilder().setName("echo:80").addVirtualHosts(VirtualHost
                .newBuilder().setName("echo.default.svc.cluster.local:80").addDomains("10.96.0.20:80").addRoutes(
                        Route.newBuilder().setName("all").setMatch(RouteMatch.newBuilder().setPrefix("/"))
                                .setRoute(RouteAction.newBuilder().setCluster(CLUSTER))))
                .build();
        Struct tunnel = Struct.newBuilder().putFields("address", text("127.0.0.1:" + node.getPort())).putFields(
                "node", text("n1")).putFields("identity", text(ECHO.toString())).putFields("workload", text("echo"))
                .build();
        ClusterLoadAssignment endpoints = ClusterLoadAssignment.newBuilder().setClusterName(CLUSTER).addEndpoints(
                LocalityLbEndpoints.newBuilder().addLbEndpoints(LbEndpoint.newBuilder().setEndpoint(Endpoint
                        .newBuilder().setAddress(Address.newBuilder().setSocketAddress(SocketAddress.newBuilder()
                                .setAddress("10.1.0.5").setPortValue(8080))))
                        .setMetadata(Metadata.newBuilder().putFilterMetadata(Forwarder.TUNNEL_METADATA, tunnel))))
                .build();
        return new EnvoyConfig(Map.of("echo:80", routes), Set.of(CLUSTER), Map.of(CLUSTER, endpoints));
    }

    static Value text(String s) {
        return Value.newBuilder().setStringValue(s).build();
    }

    /** The client's end of one call: what came back, part by part. */
    static final class Call extends ChannelInboundHandlerAdapter {
        final AtomicReference<HttpResponse> head = new AtomicReference<>();
        final ConcurrentLinkedQueue<String> parts = new ConcurrentLinkedQueue<>();
        final AtomicLong bytes = new AtomicLong();
        final AtomicReference<LastHttpContent> end = new AtomicReference<>();
        final MessageDigest digest = sha256();
        Http2StreamChannel stream;

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            if (msg instanceof HttpResponse h) {
                head.set(h);
            }
            if (msg instanceof HttpContent part) {
                ByteBuf b = part.content();
                bytes.addAndGet(b.readableBytes());
                byte[] copy = new byte[b.readableBytes()];
                b.getBytes(b.readerIndex(), copy);
                synchronized (digest) {
                    digest.update(copy);
                }
                if (copy.length > 0 && copy.length < 100) {
                    parts.add(new String(copy, java.nio.charset.StandardCharsets.UTF_8));
                }
            }
            if (msg instanceof LastHttpContent last) {
                end.set(last.retain());
            }
            ReferenceCountUtil.release(msg);
        }

        /** Opens a tunnel to the VIP through the waypoint and a call on it, and sends the head. */
        static Call open(String path) throws Exception {
            Http2StreamChannel tunnel = HboneTunnel.open(pool, new PoolKey(CLIENT, List.of(WAYPOINT),
                    waypointAddress), VIP, H2cUpstream::connection, GlobalEventExecutor.INSTANCE).get(20,
                            TimeUnit.SECONDS);
            Call call = new Call();
            call.stream = H2cUpstream.stream(tunnel, tunnel.eventLoop().newPromise(), call).get(10, TimeUnit.SECONDS);
            HttpRequest head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, path);
            head.headers().set("host", "echo.default.svc.cluster.local").set("content-type", "application/grpc")
                    .set("te", "trailers");
            call.stream.writeAndFlush(head);
            return call;
        }

        void send(String message) {
            stream.writeAndFlush(new DefaultHttpContent(Unpooled.copiedBuffer(message,
                    java.nio.charset.StandardCharsets.UTF_8)));
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void eachMessageIsAnsweredWhileTheCallIsOpenBothWays() throws Exception {
        Call call = Call.open("/demo.Echo/Chat");
        for (int i = 1; i <= 5; i++) {
            call.send("message " + i);
            int n = i;
            // The echo answers each message before the client sends the next: a waypoint that read the
            // request (or the answer) whole would never pass this one on.
            await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(call.parts).hasSize(n));
            assertThat(call.end.get()).as("the answer is still open").isNull();
        }
        assertThat(call.parts).containsExactly("message 1", "message 2", "message 3", "message 4", "message 5");
        assertThat(call.head.get().status().code()).isEqualTo(200);
        assertThat(call.head.get().headers().get("content-type")).isEqualTo("application/grpc");
        call.stream.writeAndFlush(new DefaultLastHttpContent());
        await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> assertThat(call.end.get()).isNotNull());
        assertThat(call.end.get().trailingHeaders().get("grpc-status")).isEqualTo("0");
        assertThat(call.end.get().trailingHeaders().get("x-echoed-bytes")).isEqualTo("45");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(ExchangeMetricsTest.sum(
                waypointTelemetry, "istio_requests_total", "request_protocol=\"grpc\"", "grpc_response_status=\"0\"",
                "response_code=\"200\"", "destination_workload=\"echo\"")).isGreaterThanOrEqualTo(1));
    }

    @Test
    void aCallOfThreeMebibytesEachWayArrivesWhole() throws Exception {
        Call call = Call.open("/demo.Echo/Upload");
        MessageDigest sent = sha256();
        byte[] chunk = new byte[64 * 1024];
        for (int i = 0; i < 48; i++) {
            java.util.Arrays.fill(chunk, (byte) i);
            sent.update(chunk);
            call.stream.write(new DefaultHttpContent(Unpooled.copiedBuffer(chunk)));
        }
        call.stream.writeAndFlush(new DefaultLastHttpContent());
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(call.end.get()).isNotNull());
        assertThat(call.bytes.get()).isEqualTo(48L * 64 * 1024).isGreaterThan(Forwarder.MAX_BODY * 3L - 1);
        assertThat(call.end.get().trailingHeaders().get("grpc-status")).isEqualTo("0");
        assertThat(call.end.get().trailingHeaders().get("x-echoed-bytes")).isEqualTo(String.valueOf(48 * 64 * 1024));
        synchronized (call.digest) {
            assertThat(call.digest.digest()).as("the bytes, in order").isEqualTo(sent.digest());
        }
    }

    /**
     * The endpoint's end of an HBONE stream: CONNECT answered 200, then an h2c server inside whose every
     * stream is an {@link Echo}.
     */
    static AcceptedTunnel echoTunnel() {
        return new AcceptedTunnel(() -> {}, () -> new ChannelHandler[]{new StreamBytes(), Http2FrameCodecBuilder
                .forServer().build(), new Http2MultiplexHandler(new ChannelInitializer<Http2StreamChannel>() {
                    @Override
                    protected void initChannel(Http2StreamChannel s) {
                        s.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true), new Echo());
                    }
                })});
    }

    /** A bidi call that sends back each DATA frame as it comes, then ends with its byte count in a trailer. */
    static final class Echo extends ChannelInboundHandlerAdapter {
        private long echoed;

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            if (msg instanceof HttpRequest) {
                HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
                head.headers().set("content-type", "application/grpc");
                c.writeAndFlush(head);
            }
            if (msg instanceof HttpContent part) {
                echoed += part.content().readableBytes();
                if (part.content().isReadable()) {
                    c.writeAndFlush(new DefaultHttpContent(part.content().retain()));
                }
                if (part instanceof LastHttpContent) {
                    LastHttpContent end = new DefaultLastHttpContent();
                    end.trailingHeaders().set("grpc-status", "0").set("x-echoed-bytes", String.valueOf(echoed));
                    c.writeAndFlush(end);
                }
            }
            ReferenceCountUtil.release(msg);
        }
    }
}
