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
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The waypoint tests' shared parts: {@code wisp waypoint} started in the uncaptured pod
 * {@code waypoint} of node 1, and this JVM playing node 1's agent (the agents do not tunnel to the
 * waypoint themselves yet): an HBONE stream from the agent's own pool with the client's SVID,
 * CONNECT to a service's cluster IP, then HTTP/1.1 requests inside.
 */
final class WaypointClient implements AutoCloseable {
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount("cluster.local", "default", "client");
    static final SpiffeId WAYPOINT = SpiffeId.forServiceAccount("cluster.local", "default", "waypoint");
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

    /** The waypoint's pod: on node 1, not captured (its 15008 is its own). */
    static ClusterSpec.PodSpec pod() {
        return new ClusterSpec.PodSpec("waypoint", "default", "waypoint", 0, Map.of("istio.io/dataplane-mode",
                "none"));
    }

    /** Starts the waypoint in {@link #pod()} with node 1's credential; returns its log once it is ready. */
    static Path startWaypoint(LocalMesh mesh) throws Exception {
        Path state = mesh.stateDir();
        Path log = mesh.startInPodLogged("waypoint", PodApps.wisp(List.of("-Xmx128m"), List.of("waypoint", "--name",
                "waypoint", "--namespace", "default", "--service-account", "waypoint", "--control-plane",
                mesh.cluster().underlayAddress() + ":" + LocalMesh.XDS_PORT, "--token-file", state.resolve(
                        "node-credentials").resolve("node1.token").toString(),
                "--ca-bundle", state.resolve("ca")
                        .resolve("bundle.pem").toString())));
        // The waypoint's log is the failure message: the temporary directory goes with the test.
        await().atMost(Duration.ofSeconds(120)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                "waypoint waypoint ready on"));
        return log;
    }

    /** Node 1's agent, played by this JVM: the mesh CA signs the client's SVID. */
    static WaypointClient of(LocalMesh mesh) throws Exception {
        CertificateAuthority ca = CertificateAuthority.createOrLoad(mesh.stateDir().resolve("ca"), CaSettings.of(
                "cluster.local", NodeAuthorizer.unrestricted()));
        Identities ids = Identities.local(ca, "node1");
        Transport transport = Transport.create(1);
        HbonePool pool = new HbonePool(new ProxyContext("node1", WorkloadIndex.create(), new HboneTls(ids),
                new Telemetry(), transport, Set.of(), 15008, Duration.ofSeconds(5)), 100, Duration.ofMinutes(1));
        return new WaypointClient(mesh, ids, transport, pool);
    }

    /** A tunnel through the waypoint to {@code vip}; its responses go to {@code answers} (retained). */
    Http2StreamChannel tunnel(InetSocketAddress vip, BlockingQueue<FullHttpResponse> answers) throws Exception {
        return HboneTunnel.open(pool, new PoolKey(CLIENT, List.of(WAYPOINT),
                new InetSocketAddress(InetAddress.ofLiteral(mesh.pod("waypoint").ip()), 15008)), vip,
                () -> new ChannelHandler[]{new StreamBytes(), new HttpClientCodec(), new HttpObjectAggregator(1 << 16),
                        new SimpleChannelInboundHandler<FullHttpResponse>() {
                            @Override
                            protected void channelRead0(ChannelHandlerContext c, FullHttpResponse r) {
                                answers.add(r.retain());
                            }
                        }},
                GlobalEventExecutor.INSTANCE).get(30, TimeUnit.SECONDS);
    }

    /** Sends {@code req} on {@code tunnel}; its response (the caller releases it). */
    static FullHttpResponse call(Http2StreamChannel tunnel, BlockingQueue<FullHttpResponse> answers,
            FullHttpRequest req) throws Exception {
        String what = req.method() + " " + req.uri();
        tunnel.writeAndFlush(req);
        FullHttpResponse r = answers.poll(20, TimeUnit.SECONDS);
        assertThat(r).as("an answer to " + what).isNotNull();
        return r;
    }

    static BlockingQueue<FullHttpResponse> answers() {
        return new LinkedBlockingQueue<>();
    }

    @Override
    public void close() throws Exception {
        pool.close();
        transport.close();
        ids.close();
    }
}
