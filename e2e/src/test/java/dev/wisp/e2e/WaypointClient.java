package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.node.identity.Identities;
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
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A waypoint in a local mesh, run in a test's own pod, and a client of it: {@link #startWaypoint} runs
 * {@code wisp waypoint} (identity {@code default/sa/waypoint}) as a child JVM in an uncaptured pod, and an
 * instance plays node 1's agent tunnelling a client's connection to the waypoint directly: HBONE streams
 * from the agent's own pool, with an SVID the mesh CA signs for the client, CONNECT to a service's
 * cluster IP, then HTTP/1.1 requests inside. (The agents themselves send captured traffic to a waypoint:
 * {@code WaypointE2eTest}; this client lets a test choose the identity it calls with.)
 */
final class WaypointClient implements AutoCloseable {
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount("cluster.local", "default", "client");
    static final SpiffeId WAYPOINT = SpiffeId.forServiceAccount("cluster.local", "default", "waypoint");

    /** The labels of the pod that runs the waypoint: the agents leave it uncaptured (its 15008 is its own). */
    static final Map<String, String> POD_LABELS = Map.of("istio.io/dataplane-mode", "none");

    private final LocalMesh mesh;
    private final Identities ids;
    private final Transport transport;
    private final HbonePool pool;

    private WaypointClient(LocalMesh mesh, Identities ids, Transport transport, HbonePool pool) {
        this.mesh = mesh;
        this.ids = ids;
        this.transport = transport;
        this.pool = pool;
    }

    /** The waypoint's pod {@code waypoint}: on node 1, not captured. */
    static ClusterSpec.PodSpec pod() {
        return new ClusterSpec.PodSpec("waypoint", "default", "waypoint", 0, POD_LABELS);
    }

    /** {@link #startWaypoint(LocalMesh, String)} in {@link #pod()}. */
    static Path startWaypoint(LocalMesh mesh) throws Exception {
        return startWaypoint(mesh, "waypoint");
    }

    /**
     * Starts the waypoint in {@code pod} (with node 1's credential) and waits until it is ready; returns its
     * log, the failure message of whatever waits on it.
     */
    static Path startWaypoint(LocalMesh mesh, String pod) throws Exception {
        Path state = mesh.stateDir();
        Path log = mesh.startInPodLogged(pod, PodApps.wisp(List.of("-Xmx128m"), List.of("waypoint", "--name",
                "waypoint", "--namespace", "default", "--service-account", "waypoint", "--control-plane",
                mesh.cluster().underlayAddress() + ":" + LocalMesh.XDS_PORT, "--token-file", state.resolve(
                        "node-credentials").resolve("node1.token").toString(),
                "--ca-bundle", state.resolve("ca").resolve("bundle.pem").toString())));
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                "waypoint waypoint ready on"));
        return log;
    }

    /**
     * What a waypoint e2e class holds: the waypoint started in {@link #pod()}, this JVM's client and one
     * tunnel through the waypoint to a Service's port 80. Start it once the class's routes are saved: the
     * waypoint then reads them with its first configuration, and the tunnel opens once that configuration
     * serves the Service (the waypoint refuses a CONNECT to a target it has none for, 503).
     */
    record Session(Path waypointLog, WaypointClient client, Tunnel tunnel) implements AutoCloseable {
        /** Starts the waypoint and opens a tunnel to the {@code service}-th Service's VIP, requests carrying {@code host}. */
        static Session start(LocalMesh mesh, int service, String host) throws Exception {
            Path log = startWaypoint(mesh);
            WaypointClient client = of(mesh);
            try {
                InetSocketAddress vip = new InetSocketAddress(InetAddress.ofLiteral(LocalMesh.serviceAddress(mesh
                        .cluster().spec(), service)), 80);
                Tunnel tunnel = await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(200))
                        .ignoreExceptionsInstanceOf(ExecutionException.class).until(() -> client.open(vip, host),
                                t -> t != null);
                return new Session(log, client, tunnel);
            } catch (Exception | AssertionError e) {
                client.close();
                throw e;
            }
        }

        @Override
        public void close() {
            tunnel.close();
            client.close();
        }
    }

    /** Node 1's agent, played by this JVM: the mesh CA signs the clients' SVIDs. */
    static WaypointClient of(LocalMesh mesh) throws Exception {
        CertificateAuthority ca = CertificateAuthority.createOrLoad(mesh.stateDir().resolve("ca"), CaSettings.of(
                "cluster.local", NodeAuthorizer.unrestricted()));
        Identities ids = Identities.local(ca, "node1");
        Transport transport = Transport.create(1);
        HbonePool pool = new HbonePool(new ProxyContext("node1", WorkloadIndex.create(), new HboneTls(ids),
                new Telemetry(), transport, Set.of(), 15008, Duration.ofSeconds(5)), 100, Duration.ofMinutes(1));
        return new WaypointClient(mesh, ids, transport, pool);
    }

    /** A tunnel as {@link #CLIENT} through the waypoint of {@link #pod()} to {@code vip}; requests carry {@code host}. */
    Tunnel open(InetSocketAddress vip, String host) throws Exception {
        return open(CLIENT, mesh.pod("waypoint").ip(), vip, host);
    }

    /** A tunnel as {@code client} through the waypoint at {@code waypointIp} to the server service's {@code vip}. */
    Tunnel open(SpiffeId client, String waypointIp, InetSocketAddress vip) throws Exception {
        return open(client, waypointIp, vip, "server.default.svc.cluster.local");
    }

    /**
     * Opens a tunnel as {@code client} through the waypoint at {@code waypointIp}:15008 to {@code vip};
     * requests without a Host header carry {@code host}.
     */
    Tunnel open(SpiffeId client, String waypointIp, InetSocketAddress vip, String host) throws Exception {
        BlockingQueue<FullHttpResponse> answers = new LinkedBlockingQueue<>();
        Http2StreamChannel stream = HboneTunnel.open(pool, new PoolKey(client, List.of(WAYPOINT),
                new InetSocketAddress(InetAddress.ofLiteral(waypointIp), 15008)), vip,
                () -> new ChannelHandler[]{new StreamBytes(), new HttpClientCodec(), new HttpObjectAggregator(1 << 16),
                        collector(answers)},
                GlobalEventExecutor.INSTANCE).get(30, TimeUnit.SECONDS);
        return new Tunnel(stream, answers, host);
    }

    /**
     * A tunnel as {@link #CLIENT} through the waypoint of {@link #pod()} to {@code vip} that speaks HTTP/2 with
     * prior knowledge (h2c, as gRPC's plaintext clients do): one stream per request.
     */
    H2Tunnel openH2(InetSocketAddress vip, String host) throws Exception {
        Http2StreamChannel stream = HboneTunnel.open(pool, new PoolKey(CLIENT, List.of(WAYPOINT),
                new InetSocketAddress(InetAddress.ofLiteral(mesh.pod("waypoint").ip()), 15008)), vip,
                () -> new ChannelHandler[]{new StreamBytes(), Http2FrameCodecBuilder.forClient().build(),
                        new Http2MultiplexHandler(new ChannelInboundHandlerAdapter())},
                GlobalEventExecutor.INSTANCE).get(30, TimeUnit.SECONDS);
        return new H2Tunnel(stream, host);
    }

    /** An h2c connection inside one tunnel through the waypoint; each request on a stream of its own. */
    static final class H2Tunnel implements AutoCloseable {
        private final Http2StreamChannel tunnel;
        private final String host;

        private H2Tunnel(Http2StreamChannel tunnel, String host) {
            this.tunnel = tunnel;
            this.host = host;
        }

        /**
         * Sends {@code req} (the tunnel's host when it names none) on a new stream; its response, trailers as its
         * trailing headers (the caller releases it).
         */
        FullHttpResponse send(FullHttpRequest req) throws Exception {
            BlockingQueue<FullHttpResponse> answer = new LinkedBlockingQueue<>();
            Http2StreamChannel s = new Http2StreamChannelBootstrap(tunnel)
                    .handler(new ChannelInitializer<Http2StreamChannel>() {
                        @Override
                        protected void initChannel(Http2StreamChannel c) {
                            c.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false), new HttpObjectAggregator(
                                    1 << 16), collector(answer));
                        }
                    }).open().get(20, TimeUnit.SECONDS);
            return exchange(s, req, host, answer);
        }

        @Override
        public void close() {
            tunnel.close();
        }
    }

    /** Puts each response that comes into {@code answers}. */
    static ChannelHandler collector(BlockingQueue<FullHttpResponse> answers) {
        return new SimpleChannelInboundHandler<FullHttpResponse>() {
            @Override
            protected void channelRead0(ChannelHandlerContext c, FullHttpResponse r) {
                answers.add(r.retain());
            }
        };
    }

    /** Sends {@code req} on {@code on} ({@code host} when it names none); the next of {@code answers}, awaited. */
    static FullHttpResponse exchange(Channel on, FullHttpRequest req, String host,
            BlockingQueue<FullHttpResponse> answers) throws Exception {
        String what = req.method() + " " + req.uri();
        if (!req.headers().contains(HttpHeaderNames.HOST)) {
            req.headers().set(HttpHeaderNames.HOST, host);
        }
        on.writeAndFlush(req);
        FullHttpResponse r = answers.poll(20, TimeUnit.SECONDS);
        assertThat(r).as("an answer to " + what).isNotNull();
        return r;
    }

    /** One tunnel to a service through the waypoint; requests go one at a time. */
    static final class Tunnel implements AutoCloseable {
        private final Http2StreamChannel stream;
        private final BlockingQueue<FullHttpResponse> answers;
        private final String host;

        private Tunnel(Http2StreamChannel stream, BlockingQueue<FullHttpResponse> answers, String host) {
            this.stream = stream;
            this.answers = answers;
            this.host = host;
        }

        /** Sends {@code req} (the tunnel's host when it names none); its response (the caller releases it). */
        FullHttpResponse send(FullHttpRequest req) throws Exception {
            return exchange(stream, req, host, answers);
        }

        /** GET {@code path}; its response (the caller releases it). */
        FullHttpResponse get(String path) throws Exception {
            return send(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, path));
        }

        /** {@code method path} with {@code headers} and no body: "status body". */
        String call(String method, String path, Map<String, String> headers) throws Exception {
            DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.valueOf(method),
                    path);
            headers.forEach((k, v) -> req.headers().set(k, v));
            HttpUtil.setContentLength(req, 0);
            FullHttpResponse r = send(req);
            try {
                return r.status().code() + " " + r.content().toString(StandardCharsets.UTF_8).strip();
            } finally {
                r.release();
            }
        }

        @Override
        public void close() {
            stream.close();
        }
    }

    @Override
    public void close() {
        pool.close();
        transport.close();
        ids.close();
    }
}
