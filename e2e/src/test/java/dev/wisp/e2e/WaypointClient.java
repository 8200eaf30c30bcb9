package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

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
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2StreamChannel;
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
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A local mesh's waypoint pod and a client that plays node 1's agent (the agents do not yet tunnel to
 * the waypoint themselves): the mesh CA signs the client's SVID, and each request goes over one HBONE
 * tunnel to the waypoint with the service's cluster IP as the CONNECT target.
 */
final class WaypointClient implements AutoCloseable {
    private final Identities ids;
    private final Transport transport;
    private final HbonePool pool;

    private WaypointClient(Identities ids, Transport transport, HbonePool pool) {
        this.ids = ids;
        this.transport = transport;
        this.pool = pool;
    }

    /**
     * Starts {@code wisp waypoint} in pod {@code pod} (service account {@code waypoint}, namespace default)
     * with node 1's credential; returns its log once it says it is ready.
     */
    static Path startWaypoint(LocalMesh mesh, String pod) throws Exception {
        Path state = mesh.stateDir();
        Path log = mesh.startInPodLogged(pod, PodApps.wisp(List.of("-Xmx128m"), List.of("waypoint", "--name",
                "waypoint", "--namespace", "default", "--service-account", "waypoint", "--control-plane",
                mesh.cluster().underlayAddress() + ":" + LocalMesh.XDS_PORT, "--token-file", state.resolve(
                        "node-credentials").resolve("node1.token").toString(),
                "--ca-bundle", state.resolve("ca").resolve("bundle.pem").toString())));
        // The waypoint's log is the failure message: the temporary directory goes with the test.
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                "waypoint waypoint ready on"));
        return log;
    }

    static WaypointClient of(LocalMesh mesh) throws Exception {
        CertificateAuthority ca = CertificateAuthority.createOrLoad(mesh.stateDir().resolve("ca"), CaSettings.of(
                "cluster.local", NodeAuthorizer.unrestricted()));
        Identities ids = Identities.local(ca, "node1");
        Transport transport = Transport.create(1);
        HbonePool pool = new HbonePool(new ProxyContext("node1", WorkloadIndex.create(), new HboneTls(ids),
                new Telemetry(), transport, Set.of(), 15008, Duration.ofSeconds(5)), 100, Duration.ofMinutes(1));
        return new WaypointClient(ids, transport, pool);
    }

    /** One tunnel from {@code client} through the waypoint at {@code waypointIp} to {@code vip}. */
    Tunnel open(SpiffeId client, String waypointIp, InetSocketAddress vip) throws Exception {
        SpiffeId waypoint = SpiffeId.forServiceAccount("cluster.local", "default", "waypoint");
        BlockingQueue<FullHttpResponse> answers = new LinkedBlockingQueue<>();
        Http2StreamChannel tunnel = HboneTunnel.open(pool, new PoolKey(client, List.of(waypoint),
                new InetSocketAddress(InetAddress.ofLiteral(waypointIp), 15008)), vip,
                () -> new ChannelHandler[]{new StreamBytes(), new HttpClientCodec(), new HttpObjectAggregator(1 << 16),
                        new SimpleChannelInboundHandler<FullHttpResponse>() {
                            @Override
                            protected void channelRead0(ChannelHandlerContext c, FullHttpResponse r) {
                                answers.add(r.retain());
                            }
                        }},
                GlobalEventExecutor.INSTANCE).get(30, TimeUnit.SECONDS);
        return new Tunnel(tunnel, answers);
    }

    /** The HTTP/1.1 requests of one tunnel, one at a time. */
    record Tunnel(Http2StreamChannel channel, BlockingQueue<FullHttpResponse> answers) implements AutoCloseable {
        /** {@code method path} with {@code headers}: "status body". */
        String call(String method, String path, Map<String, String> headers) throws Exception {
            DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.valueOf(method),
                    path);
            req.headers().set(HttpHeaderNames.HOST, "server.default.svc.cluster.local");
            headers.forEach((k, v) -> req.headers().set(k, v));
            HttpUtil.setContentLength(req, 0);
            channel.writeAndFlush(req);
            FullHttpResponse r = answers.poll(20, TimeUnit.SECONDS);
            assertThat(r).as("an answer to " + method + " " + path).isNotNull();
            try {
                return r.status().code() + " " + r.content().toString(StandardCharsets.UTF_8).strip();
            } finally {
                r.release();
            }
        }

        @Override
        public void close() {
            channel.close();
        }
    }

    @Override
    public void close() throws Exception {
        pool.close();
        transport.close();
        ids.close();
    }
}
