package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.route.v3.HeaderMatcher;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The inside of a tunnel ({@link InnerProtocol} on an embedded channel, as the HBONE stream's bytes
 * reach it): a prior-knowledge HTTP/2 client's streams, several at once, are each routed as a request
 * ({@code :authority} as host); a gRPC request the waypoint answers gets a trailers-only gRPC status
 * and is counted as gRPC; HTTP/1.1 still works; the HTTP/2 server's limits are announced.
 */
class InnerProtocolTest {
    final Telemetry telemetry = new Telemetry();
    final EmbeddedChannel server = new EmbeddedChannel(new InnerProtocol(h2 -> new Exchange(ExchangeMetricsTest.VIP,
            Optional.of(ExchangeMetricsTest.CLIENT), ExchangeMetricsTest.routing(telemetry), h2)));
    final EmbeddedChannel client = new EmbeddedChannel(Http2FrameCodecBuilder.forClient().build(),
            new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()));
    final Map<String, FullHttpResponse> answers = new TreeMap<>();

    /** Moves the bytes each side wrote to the other until neither has more. */
    void pump() {
        pump(server);
    }

    /** {@link #pump()} with {@code server} as the waypoint's end. */
    void pump(EmbeddedChannel server) {
        boolean moved = true;
        while (moved) {
            moved = false;
            for (ByteBuf b; (b = client.readOutbound()) != null; moved = true) {
                server.writeInbound(b);
            }
            for (ByteBuf b; (b = server.readOutbound()) != null; moved = true) {
                client.writeInbound(b);
            }
            server.runPendingTasks();
            client.runPendingTasks();
        }
    }

    /** Opens a stream and sends {@code request} on it; its answer lands in {@link #answers} under {@code key}. */
    void send(String key, FullHttpRequest request) {
        Http2StreamChannel stream = new Http2StreamChannelBootstrap(client)
                .handler(new ChannelInitializer<Http2StreamChannel>() {
                    @Override
                    protected void initChannel(Http2StreamChannel s) {
                        s.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false),
                                new HttpObjectAggregator(1 << 16),
                                new SimpleChannelInboundHandler<FullHttpResponse>(false) {
                                    @Override
                                    protected void channelRead0(ChannelHandlerContext c, FullHttpResponse r) {
                                        answers.put(key, r);
                                    }
                                });
                    }
                }).open().syncUninterruptibly().getNow();
        stream.writeAndFlush(request);
    }

    static FullHttpRequest request(String path, String host, boolean grpc) {
        FullHttpRequest r = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, path, Unpooled
                .copiedBuffer("hi", StandardCharsets.UTF_8));
        r.headers().set("host", host);
        if (grpc) {
            r.headers().set("content-type", "application/grpc").set("te", "trailers");
        }
        return r;
    }

    @Test
    void concurrentHttp2StreamsAreEachRoutedAndGrpcGetsItsStatus() {
        pump(); // the prefaces and SETTINGS
        send("a-ok", request("/ok", "server.default.svc.cluster.local", false));
        send("b-ok", request("/ok", "server.default.svc.cluster.local", false));
        send("c-none", request("/nothing-here", "server.default.svc.cluster.local", false));
        send("d-grpc-none", request("/pkg.Svc/Missing", "server.default.svc.cluster.local", true));
        send("e-grpc-down", request("/down", "server.default.svc.cluster.local", true));
        pump();

        assertThat(answers).containsOnlyKeys("a-ok", "b-ok", "c-none", "d-grpc-none", "e-grpc-down");
        List<String> got = new ArrayList<>();
        answers.forEach((k, r) -> got.add(k + " " + r.status().code() + " " + r.content().toString(
                StandardCharsets.UTF_8).strip() + " " + r.headers().get("grpc-status") + " " + r.trailingHeaders()
                        .get("grpc-status")));
        assertThat(got).containsExactly("a-ok 200 direct response null null", "b-ok 200 direct response null null",
                "c-none 404 no route matched null null",
                // trailers-only: the status in the one HEADERS frame, no body
                "d-grpc-none 200  12 null", "e-grpc-down 200  14 null");
        assertThat(answers.get("d-grpc-none").headers().get("content-type")).isEqualTo("application/grpc");
        answers.values().forEach(FullHttpResponse::release);

        assertThat(sum("istio_requests_total", "request_protocol=\"grpc\"", "grpc_response_status=\"12\"",
                "response_code=\"200\"")).isEqualTo(1);
        assertThat(sum("istio_requests_total", "request_protocol=\"grpc\"", "grpc_response_status=\"14\""))
                .isEqualTo(1);
        assertThat(sum("istio_requests_total", "request_protocol=\"http\"", "response_code=\"200\"")).isEqualTo(2);
        assertThat(sum("istio_requests_total", "request_protocol=\"http\"", "response_code=\"404\"")).isEqualTo(1);
    }

    @Test
    void theServerAnnouncesItsLimits() {
        pump();
        var codec = server.pipeline().get(io.netty.handler.codec.http2.Http2FrameCodec.class);
        assertThat(codec).as("the preface made the tunnel HTTP/2").isNotNull();
        assertThat(codec.connection().local().maxActiveStreams()).isEqualTo(InnerProtocol.MAX_STREAMS);
        assertThat(codec.decoder().localSettings().maxHeaderListSize()).isEqualTo(InnerProtocol.MAX_HEADER_LIST);
    }

    @Test
    void http1IsToldApartAtTheFirstByteThatIsNotThePreface() {
        EmbeddedChannel h1 = new EmbeddedChannel(new InnerProtocol(h2 -> new Exchange(ExchangeMetricsTest.VIP,
                Optional.empty(), ExchangeMetricsTest.routing(telemetry), h2)));
        // "P" is where the preface begins too: the decision waits for the next byte.
        h1.writeInbound(Unpooled.copiedBuffer("P", StandardCharsets.US_ASCII));
        assertThat(h1.pipeline().get(InnerProtocol.class)).isNotNull();
        h1.writeInbound(Unpooled.copiedBuffer("OST /ok HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n",
                StandardCharsets.US_ASCII));
        ByteBuf out = h1.readOutbound();
        assertThat(out.toString(StandardCharsets.US_ASCII)).startsWith("HTTP/1.1 200 OK").endsWith("direct response\n");
        out.release();
        // A gRPC request over HTTP/1.1 that the waypoint answers: the gRPC status, and a length that
        // ends the answer so the connection can carry the next one.
        h1.writeInbound(
                Unpooled.copiedBuffer("POST /pkg.Svc/M HTTP/1.1\r\nhost: a\r\ncontent-type: application/grpc\r\n"
                        + "content-length: 0\r\n\r\n", StandardCharsets.US_ASCII));
        out = h1.readOutbound();
        assertThat(out.toString(StandardCharsets.US_ASCII)).startsWith("HTTP/1.1 200 OK").contains("grpc-status: 12",
                "content-length: 0").endsWith("\r\n\r\n");
        out.release();
        assertThat(Http2CodecUtil.connectionPrefaceBuf().readableBytes()).isEqualTo(24);
    }

    /**
     * An HTTP/1.1 request offering {@code Upgrade: h2c} is answered as HTTP/1.1 (no 101), and the offer's
     * headers are neither routed on nor passed on: routes that match on them would answer 500/501.
     */
    @Test
    void anUpgradeToH2cIsDeclinedAndNotPassedOn() {
        EnvoyConfig config = new EnvoyConfig(Map.of("up", RouteConfiguration.newBuilder().setName("up")
                .addVirtualHosts(VirtualHost.newBuilder().setName("up").addDomains("10.96.0.10:8080").addRoutes(
                        present("upgrade", 500)).addRoutes(present("http2-settings", 501)).addRoutes(present(
                                "x-listed", 502))
                        .addRoutes(ExchangeMetricsTest.direct("ok", "/ok", 200, "fine")))
                .build()), Set.of(), Map.of());
        EmbeddedChannel h1 = new EmbeddedChannel(new InnerProtocol(h2 -> new Exchange(ExchangeMetricsTest.VIP,
                Optional.empty(), new Routing(() -> config, null, new RequestMetrics(telemetry.registry())), h2)));
        h1.writeInbound(Unpooled.copiedBuffer("GET /ok HTTP/1.1\r\nhost: a\r\nconnection: Upgrade, HTTP2-Settings, "
                + "X-Listed\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\nx-listed: 1\r\n\r\n",
                StandardCharsets.US_ASCII));
        ByteBuf out = h1.readOutbound();
        assertThat(out.toString(StandardCharsets.US_ASCII)).startsWith("HTTP/1.1 200 OK").endsWith("direct response\n");
        out.release();
        assertThat(h1.pipeline().get(io.netty.handler.codec.http.HttpServerCodec.class)).as("still HTTP/1.1")
                .isNotNull();
    }

    /**
     * An HTTP/2 request without {@code :authority} is routed, and sent upstream, with the service's name as
     * its {@code host} (an HTTP/1.1 endpoint answers 400 to a request without one); one that has it keeps it.
     * The route matches on the header map that {@code RouteActions.upstream} copies into the upstream request.
     */
    @Test
    void anHttp2RequestWithoutAuthorityGetsTheServicesNameAsItsHost() {
        String name = "server.default.svc.cluster.local";
        EnvoyConfig config = new EnvoyConfig(Map.of("h", RouteConfiguration.newBuilder().setName("h").addVirtualHosts(
                VirtualHost.newBuilder().setName("h").addDomains(name).addDomains(name + ":8080").addDomains(
                        "10.96.0.10").addDomains("10.96.0.10:8080").addRoutes(host(name + ":8080", 201)).addRoutes(
                                host("elsewhere", 202)))
                .build()), Set.of(), Map.of());
        EmbeddedChannel h2 = new EmbeddedChannel(new InnerProtocol(x -> new Exchange(ExchangeMetricsTest.VIP,
                Optional.empty(), new Routing(() -> config, null, new RequestMetrics(telemetry.registry())), x)));
        pump(h2);
        FullHttpRequest none = request("/", "x", false);
        none.headers().remove("host");
        send("a-none", none);
        send("b-given", request("/", "elsewhere", false));
        pump(h2);
        assertThat(answers).containsOnlyKeys("a-none", "b-given");
        assertThat(answers.get("a-none").status().code()).as(answers.get("a-none").content().toString(
                StandardCharsets.UTF_8)).isEqualTo(201);
        assertThat(answers.get("b-given").status().code()).isEqualTo(202);
        answers.values().forEach(FullHttpResponse::release);
    }

    @Test
    void theDefaultHostIsTheFirstNameOfTheVirtualHostElseTheTarget() {
        VirtualHost named = VirtualHost.newBuilder().addDomains("10.96.0.10").addDomains("*.example").addDomains(
                "a.ns.svc.cluster.local:80").addDomains("a.ns.svc.cluster.local").build();
        VirtualHost addresses = VirtualHost.newBuilder().addDomains("[fd00:0:0:0:0:0:0:10]:80").build();
        var v4 = new java.net.InetSocketAddress(java.net.InetAddress.ofLiteral("10.96.0.10"), 80);
        var v6 = new java.net.InetSocketAddress(java.net.InetAddress.ofLiteral("fd00::10"), 8080);
        assertThat(Authorities.of(named, v4)).isEqualTo("a.ns.svc.cluster.local");
        assertThat(Authorities.of(named, v6)).isEqualTo("a.ns.svc.cluster.local:8080");
        assertThat(Authorities.of(addresses, v4)).isEqualTo("10.96.0.10:80");
        assertThat(Authorities.of(addresses, v6)).isEqualTo("[fd00:0:0:0:0:0:0:10]:8080");
    }

    /** A route answering {@code status} to every request whose {@code host} is exactly {@code value}. */
    static Route host(String value, int status) {
        return Route.newBuilder(ExchangeMetricsTest.direct("host-" + status, "/", status, value)).setMatch(RouteMatch
                .newBuilder().setPrefix("/").addHeaders(HeaderMatcher.newBuilder().setName("host").setStringMatch(
                        io.envoyproxy.envoy.type.matcher.v3.StringMatcher.newBuilder().setExact(value))))
                .build();
    }

    static Route present(String header, int status) {
        return Route.newBuilder(ExchangeMetricsTest.direct(header, "/", status, header)).setMatch(RouteMatch
                .newBuilder().setPrefix("/").addHeaders(HeaderMatcher.newBuilder().setName(header).setPresentMatch(
                        true)))
                .build();
    }

    double sum(String name, String... labels) {
        return ExchangeMetricsTest.sum(telemetry, name, labels);
    }
}
