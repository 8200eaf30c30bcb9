package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.base.Closing;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
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
import dev.wisp.testing.ConfigYaml;
import dev.wisp.testing.Prerequisites;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
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
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The waypoint end to end in a local mesh: the control plane, two node agents, {@code wisp waypoint}
 * as a child JVM in an uncaptured pod on node 1, and two versions of a server on node 2 behind the
 * service {@code server} (and {@code server-v1}, {@code server-v2}). An HTTPRoute attached to
 * {@code server} splits {@code /api} 80/20 between the versions. This test plays node 1's agent
 * tunnelling a client's connection to the waypoint (the agents do not yet do it themselves): an
 * HBONE stream from the agent's own pool with the client's SVID, CONNECT to the service's cluster IP,
 * then HTTP/1.1 requests inside. The waypoint reads the route from the control plane's Envoy xDS,
 * and sends each request over a new HBONE stream to node 2's agent, which sees the waypoint's
 * identity and delivers it to the chosen pod.
 */
class WaypointE2eTest {
    static final String CLUSTER = "wpl7";
    static final String ROUTE = ConfigYaml.httpRouteHead("split", "default", "server", 80) + """
            rules:
            - matches: [{path: {type: PathPrefix, value: /api}}]
              backendRefs: [{name: server-v1, port: 80, weight: 80}, {name: server-v2, port: 80, weight: 20}]
            """.indent(2);
    static final int CALLS = 200;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static Transport transport;
    static HbonePool pool;
    static Identities ids;

    @BeforeAll
    static void up() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nsenter");
        ClusterSpec cluster = ClusterSpec.builder(CLUSTER).nodes(2).base(30)
                .pod(new ClusterSpec.PodSpec("waypoint", "default", "waypoint", 0,
                        Map.of("istio.io/dataplane-mode", "none")))
                .pod(new ClusterSpec.PodSpec("v1", "default", "server", 1, Map.of("app", "server", "version", "v1")))
                .pod(new ClusterSpec.PodSpec("v2", "default", "server", 1, Map.of("app", "server", "version", "v2")))
                .build();
        mesh = LocalMesh.up(MeshSpec.builder(cluster).workDir(dir)
                .service(service(cluster, "server", 1, Map.of("app", "server")))
                .service(service(cluster, "server-v1", 2, Map.of("version", "v1")))
                .service(service(cluster, "server-v2", 3, Map.of("version", "v2"))).build());
        for (String pod : List.of("v1", "v2")) {
            mesh.startInPodLogged(pod, PodApps.wisp(List.of("-Xmx64m"), List.of("demo-app", "server", "--port",
                    "8080", "--name", pod)));
        }
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
        mesh.apply("route.yaml", ROUTE);
        await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> assertThat(PodApps.read(log)).contains(
                "waypoint holds 3 route configurations, 3 clusters"));
        // node 1's agent, played by this JVM: the mesh CA signs the client's SVID.
        CertificateAuthority ca = CertificateAuthority.createOrLoad(state.resolve("ca"), CaSettings.of(
                "cluster.local", NodeAuthorizer.unrestricted()));
        ids = Identities.local(ca, "node1");
        transport = Transport.create(1);
        pool = new HbonePool(new ProxyContext("node1", WorkloadIndex.create(), new HboneTls(ids), new Telemetry(),
                transport, Set.of(), 15008, Duration.ofSeconds(5)), 100, Duration.ofMinutes(1));
    }

    static MeshSpec.ServiceSpec service(ClusterSpec cluster, String name, int i, Map<String, String> selector) {
        return new MeshSpec.ServiceSpec(name, "default", selector, LocalMesh.serviceAddress(cluster, i), 80, 8080);
    }

    @AfterAll
    static void down() throws Exception {
        Closing.inOrder(pool, transport, ids);
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    void anHttpRouteSplitsRequestsBetweenTwoBackendsAndAnUnmatchedPathIs404() throws Exception {
        SpiffeId client = SpiffeId.forServiceAccount("cluster.local", "default", "client");
        SpiffeId waypoint = SpiffeId.forServiceAccount("cluster.local", "default", "waypoint");
        InetSocketAddress vip = new InetSocketAddress(InetAddress.ofLiteral(LocalMesh.serviceAddress(mesh.cluster()
                .spec(), 1)), 80);
        BlockingQueue<FullHttpResponse> answers = new LinkedBlockingQueue<>();
        Http2StreamChannel tunnel = HboneTunnel.open(pool, new PoolKey(client, List.of(waypoint),
                new InetSocketAddress(InetAddress.ofLiteral(mesh.pod("waypoint").ip()), 15008)), vip,
                () -> new ChannelHandler[]{new StreamBytes(), new HttpClientCodec(), new HttpObjectAggregator(1 << 16),
                        new SimpleChannelInboundHandler<FullHttpResponse>() {
                            @Override
                            protected void channelRead0(ChannelHandlerContext c, FullHttpResponse r) {
                                answers.add(r.retain());
                            }
                        }},
                GlobalEventExecutor.INSTANCE).get(30, TimeUnit.SECONDS);

        int v1 = 0;
        int v2 = 0;
        for (int i = 0; i < CALLS; i++) {
            FullHttpResponse r = call(tunnel, answers, "/api/items/" + i);
            String body = r.content().toString(StandardCharsets.UTF_8);
            assertThat(r.status().code()).as("call %d: %s", i, body).isEqualTo(200);
            r.release();
            if (body.equals("hello from v1\n")) {
                v1++;
            } else if (body.equals("hello from v2\n")) {
                v2++;
            } else {
                throw new AssertionError("unexpected answer to call " + i + ": " + body);
            }
        }
        assertThat(v1 + v2).isEqualTo(CALLS);
        // 80/20 of 200: v2 expects 40 (standard deviation 5.7); 20..60 is beyond three and a half.
        assertThat(v2).as("v2's share of " + CALLS + " (v1 %d)", v1).isBetween(20, 60);

        FullHttpResponse none = call(tunnel, answers, "/other");
        assertThat(none.status().code()).as("no rule matches /other").isEqualTo(404);
        none.release();
        tunnel.close();

        // The backends' agent (node 2) saw each call as a connection from the waypoint's identity.
        String v1Ip = mesh.pod("v1").ip();
        String v2Ip = mesh.pod("v2").ip();
        int seenV1 = v1;
        int seenV2 = v2;
        // Exactly as many as the client counted: the 404 reached no backend.
        await().atMost(Duration.ofSeconds(20)).until(() -> fromWaypoint(v1Ip) == seenV1
                && fromWaypoint(v2Ip) == seenV2);
    }

    /** One request on the tunnel; its response (the caller releases it). */
    static FullHttpResponse call(Http2StreamChannel tunnel, BlockingQueue<FullHttpResponse> answers, String path)
            throws Exception {
        DefaultFullHttpRequest req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, path);
        req.headers().set(HttpHeaderNames.HOST, "server.default.svc.cluster.local");
        tunnel.writeAndFlush(req);
        FullHttpResponse r = answers.poll(20, TimeUnit.SECONDS);
        assertThat(r).as("an answer to GET " + path).isNotNull();
        return r;
    }

    /** Connections node 2's agent delivered to {@code ip}:8080 from the waypoint's identity. */
    static long fromWaypoint(String ip) {
        Pattern line = Pattern.compile("connection complete direction=inbound .*src\\.identity=\""
                + Pattern.quote("spiffe://cluster.local/ns/default/sa/waypoint") + "\" dst\\.addr="
                + Pattern.quote(ip) + ":8080 ");
        return mesh.log("node2").lines().filter(l -> line.matcher(l).find()).count();
    }
}
