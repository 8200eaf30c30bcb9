package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.testing.ExtAuthzServer;
import dev.wisp.testing.LogCapture;
import dev.wisp.waypoint.authz.ExtAuthzClient;
import dev.wisp.waypoint.authz.RequestGate;
import dev.wisp.waypoint.route.RateLimits;
import dev.wisp.waypoint.telemetry.RequestMetrics;
import dev.wisp.waypoint.xds.EnvoyConfig;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.GrpcService;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.Endpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.rbac.v3.Permission;
import io.envoyproxy.envoy.config.rbac.v3.Policy;
import io.envoyproxy.envoy.config.rbac.v3.Principal;
import io.envoyproxy.envoy.config.rbac.v3.RBAC;
import io.envoyproxy.envoy.config.route.v3.DirectResponseAction;
import io.envoyproxy.envoy.config.route.v3.HeaderMatcher;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.ext_authz.v3.ExtAuthz;
import io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBACPerRoute;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.DefaultEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.local.LocalAddress;
import io.netty.channel.local.LocalChannel;
import io.netty.channel.local.LocalServerChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpVersion;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A CUSTOM policy's external authorizer through the waypoint's request path: {@link Exchange} on a real
 * event loop (Netty's local transport, messages passed as objects) asks a real ext_authz gRPC server
 * ({@link ExtAuthzServer}) and takes its answer back on the stream's loop. An allowed request is routed
 * with the header the authorizer set (the route matching it answers 202, the other 200); a denied one
 * gets the authorizer's status and body, is counted and logged with the provider's name; a gRPC call's
 * parts that come while the authorizer is asked are held, and freed when it denies.
 */
class ExchangeExtAuthzTest {
    static final String ROUTES = "server.default.svc.cluster.local:8080";
    static DefaultEventLoopGroup group;
    static ExtAuthzServer authorizer;
    static ExtAuthzClient client;
    static Telemetry telemetry = new Telemetry();
    static RequestMetrics metrics = new RequestMetrics(telemetry.registry());
    static Channel http1;
    static Channel http2;

    @BeforeAll
    static void start() throws Exception {
        group = new DefaultEventLoopGroup(1);
        authorizer = ExtAuthzServer.start(new InetSocketAddress("127.0.0.1", 0), r -> r.getAttributes().getRequest()
                .getHttp().getMethod().equals("GET")
                        ? ExtAuthzServer.allow("x-authz", "yes")
                        : ExtAuthzServer.deny(403, "no posting"));
        client = new ExtAuthzClient(metrics::extAuthz);
        EnvoyConfig config = config(authorizer.port());
        http1 = serve("h1-authz", config, false);
        http2 = serve("h2-authz", config, true);
    }

    /** The exchange on its own local address, its requests HTTP/2 streams when {@code h2}. */
    static Channel serve(String name, EnvoyConfig config, boolean h2) throws InterruptedException {
        return new ServerBootstrap().group(group).channel(LocalServerChannel.class).childHandler(
                new ChannelInitializer<LocalChannel>() {
                    @Override
                    protected void initChannel(LocalChannel ch) {
                        ch.pipeline().addLast(new Exchange(ExchangeMetricsTest.VIP, Optional.of(
                                ExchangeMetricsTest.CLIENT),
                                new Routing(() -> config, null, metrics, new RateLimits(System::nanoTime), Optional.of(
                                        client)),
                                h2));
                    }
                }).bind(new LocalAddress(name)).sync().channel();
    }

    @AfterAll
    static void stop() {
        http1.close().syncUninterruptibly();
        http2.close().syncUninterruptibly();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        client.close();
        authorizer.close();
    }

    /** Every request to the VIP goes to the authorizer; 202 when it carries {@code x-authz}, else 200. */
    static EnvoyConfig config(int port) {
        RBAC shadow = RBAC.newBuilder().setAction(RBAC.Action.DENY).putPolicies("default/ext[0]", Policy.newBuilder()
                .addPermissions(Permission.newBuilder().setAny(true)).addPrincipals(Principal.newBuilder().setAny(true))
                .build()).build();
        VirtualHost host = VirtualHost.newBuilder().setName(ROUTES).addDomains("10.96.0.10:8080")
                .putTypedPerFilterConfig(RequestGate.CUSTOM_FILTER, Any.pack(RBACPerRoute.newBuilder().setRbac(
                        io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBAC.newBuilder().setShadowRules(shadow))
                        .build()))
                .addRoutes(Route.newBuilder().setName("tagged").setMatch(RouteMatch.newBuilder().setPrefix("/")
                        .addHeaders(HeaderMatcher.newBuilder().setName("x-authz").setPresentMatch(true)))
                        .setDirectResponse(DirectResponseAction.newBuilder().setStatus(202)))
                .addRoutes(Route.newBuilder().setName("plain").setMatch(RouteMatch.newBuilder().setPrefix("/"))
                        .setDirectResponse(DirectResponseAction.newBuilder().setStatus(200)))
                .build();
        ExtAuthz filter = ExtAuthz.newBuilder().setStatPrefix("authz").setGrpcService(GrpcService.newBuilder()
                .setEnvoyGrpc(GrpcService.EnvoyGrpc.newBuilder().setClusterName("outbound|1||127.0.0.1"))
                .setTimeout(com.google.protobuf.Duration.newBuilder().setSeconds(20))).build();
        ClusterLoadAssignment endpoints = ClusterLoadAssignment.newBuilder().setClusterName("outbound|1||127.0.0.1")
                .addEndpoints(LocalityLbEndpoints.newBuilder().addLbEndpoints(LbEndpoint.newBuilder().setEndpoint(
                        Endpoint.newBuilder().setAddress(Address.newBuilder().setSocketAddress(SocketAddress
                                .newBuilder().setAddress("127.0.0.1").setPortValue(port))))))
                .build();
        return new EnvoyConfig(Map.of(ROUTES, RouteConfiguration.newBuilder().setName(ROUTES).addVirtualHosts(host)
                .build()), Set.of("outbound|1||127.0.0.1"), Map.of("outbound|1||127.0.0.1", endpoints), Map.of(ROUTES,
                        filter));
    }

    /** A client of the exchange; what it gets lands in {@code answers}. */
    static Channel connect(String name, BlockingQueue<FullHttpResponse> answers) throws Exception {
        return new Bootstrap().group(group).channel(LocalChannel.class).handler(
                new SimpleChannelInboundHandler<HttpObject>(false) {
                    @Override
                    protected void channelRead0(ChannelHandlerContext c, HttpObject r) {
                        answers.add((FullHttpResponse) r);
                    }
                }).connect(new LocalAddress(name)).sync().channel();
    }

    static FullHttpResponse next(BlockingQueue<FullHttpResponse> answers) throws Exception {
        FullHttpResponse r = answers.poll(30, TimeUnit.SECONDS);
        assertThat(r).as("an answer").isNotNull();
        return r;
    }

    @Test
    void allowedGoesOnWithTheAuthorizersHeaderAndDeniedGetsItsStatusAndBody() throws Exception {
        BlockingQueue<FullHttpResponse> answers = new LinkedBlockingQueue<>();
        Channel c = connect("h1-authz", answers);
        try (LogCapture access = new LogCapture("wisp.access")) {
            DefaultFullHttpRequest get = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/a?b=1");
            get.headers().set("x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/other/sa/admin");
            c.writeAndFlush(get);
            FullHttpResponse ok = next(answers);
            assertThat(ok.status().code()).as("routed with x-authz set").isEqualTo(202);
            ok.release();
            CheckRequest check = authorizer.checks().getLast();
            assertThat(check.getAttributes().getSource().getPrincipal()).isEqualTo(ExchangeMetricsTest.CLIENT
                    .toString());
            assertThat(check.getAttributes().getRequest().getHttp().getPath()).isEqualTo("/a?b=1");
            assertThat(check.getAttributes().getRequest().getHttp().getHeadersMap())
                    .doesNotContainKey("x-forwarded-client-cert");

            c.writeAndFlush(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST, "/a", Unpooled
                    .copiedBuffer("x", StandardCharsets.UTF_8)));
            FullHttpResponse denied = next(answers);
            assertThat(denied.status().code()).isEqualTo(403);
            assertThat(denied.content().toString(StandardCharsets.UTF_8)).isEqualTo("no posting");
            denied.release();
            assertThat(access.lines()).filteredOn(l -> l.contains("method=POST")).singleElement().asString()
                    .contains("status=403").contains("ext_authz: denied by provider authz (CUSTOM policy "
                            + "default/ext[0])");
        } finally {
            c.close().sync();
        }
        assertThat(ExchangeMetricsTest.sum(telemetry, "wisp_waypoint_ext_authz_total", "provider=\"authz\"",
                "result=\"denied\"")).isGreaterThanOrEqualTo(1);
        assertThat(ExchangeMetricsTest.sum(telemetry, "wisp_waypoint_ext_authz_total", "provider=\"authz\"",
                "result=\"allowed\"")).isGreaterThanOrEqualTo(1);
    }

    @Test
    void aGrpcCallsPartsWaitForTheAuthorizerAndAreFreedWhenItDenies() throws Exception {
        BlockingQueue<FullHttpResponse> answers = new LinkedBlockingQueue<>();
        Channel c = connect("h2-authz", answers);
        try {
            DefaultHttpRequest head = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.POST,
                    "/shop.Reviews/List");
            head.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/grpc");
            DefaultLastHttpContent body = new DefaultLastHttpContent(Unpooled.copiedBuffer(new byte[]{0, 0, 0, 0, 0}));
            c.write(head);
            c.writeAndFlush(body);
            FullHttpResponse r = next(answers);
            assertThat(r.status().code()).isEqualTo(200);
            assertThat(r.headers().get("grpc-status")).as("403 as gRPC's PERMISSION_DENIED").isEqualTo("7");
            r.release();
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(body
                    .refCnt()).as("the held part is freed").isZero());
        } finally {
            c.close().sync();
        }
    }
}
