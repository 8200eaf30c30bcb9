package dev.wisp.controlplane.envoy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.RawGrpc;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.testing.ConfigYaml;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.StatusException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import io.grpc.stub.BlockingClientCall;
import io.grpc.ClientInterceptors;
import io.grpc.xds.XdsNameResolverProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Proof that the control plane's Envoy xDS is real: grpc-java's own xDS client (grpc-xds, proxyless)
 * dials {@code xds:///server.demo.svc.cluster.local:8080}, resolves our listener, route
 * configuration, clusters and endpoints, and follows our weighted split (80/20) and our header match
 * to two loopback gRPC servers standing for the v1 and v2 pods. The ADS service is the control
 * plane's own ({@link ControlPlane#envoy()}, the one it serves on its agents' TLS port); the test
 * serves that same service a second time on a plaintext loopback port, because the grpc-xds client
 * cannot present the control plane's node credential. The TLS port is checked to serve the same
 * RouteConfiguration, name and version, to a client with a node credential, and to refuse one without.
 */
class ProxylessGrpcXdsTest {
    static final String TARGET = "server.demo.svc.cluster.local:8080";
    /** {@code wisp.test.Versions/Which}: the server answers its version. */
    static final MethodDescriptor<byte[], byte[]> WHICH = RawGrpc.unary("wisp.test.Versions/Which");

    @TempDir
    Path config;
    @TempDir
    Path state;
    final List<Server> servers = new ArrayList<>();
    final List<ManagedChannel> channels = new ArrayList<>();
    ControlPlane cp;

    @AfterEach
    void stop() throws InterruptedException {
        for (ManagedChannel c : channels) {
            c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        for (Server s : servers) {
            s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        if (cp != null) {
            cp.close();
        }
    }

    @Test
    void proxylessGrpcFollowsTheWeightedSplitAndTheHeaderMatch() throws Exception {
        int v1 = version("v1", "127.0.0.1");
        int v2 = version("v2", "127.0.0.2");
        Files.writeString(config.resolve("mesh.yaml"), ConfigYaml.documents(ConfigYaml.node("node-a", "127.0.0.1"),
                ConfigYaml.pod("server-v1", "demo", "app: server, version: v1", "node-a", "server", "127.0.0.1"),
                ConfigYaml.pod("server-v2", "demo", "app: server, version: v2", "node-a", "server", "127.0.0.2"),
                service("server", "app: server", "10.96.0.20", 8080),
                service("server-v1", "version: v1", "10.96.0.21", v1),
                service("server-v2", "version: v2", "10.96.0.22", v2),
                """
                        kind: HTTPRoute
                        apiVersion: gateway.networking.k8s.io/v1
                        metadata: {namespace: demo, name: split}
                        spec:
                          rules:
                          - backendRefs: [{name: server-v2, port: 8080}]
                            matches: [{headers: [{value: v2, name: x-version}]}]
                          - backendRefs: [{name: server-v1, port: 8080, weight: 80}, {name: server-v2, port: 8080, weight: 20}]
                          parentRefs: [{group: "", kind: Service, port: 8080, name: server}]
                        """));
        cp = ControlPlane.start(new ControlPlane.Options(config, state, new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0)));
        await().atMost(Duration.ofSeconds(20)).until(() -> cp.envoy().snapshot() != null);
        String version = Long.toString(cp.configStatus().generation());

        Server ads = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(cp.envoy().aggregatedService()).build().start();
        servers.add(ads);
        @SuppressWarnings("unchecked")
        Map<String, ?> bootstrap = new ObjectMapper().readValue("""
                {"xds_servers": [{"server_uri": "127.0.0.1:%d", "channel_creds": [{"type": "insecure"}],
                                  "server_features": ["xds_v3"]}],
                 "node": {"id": "proxyless-test", "cluster": "wisp-test"}}
                """.formatted(((InetSocketAddress) ads.getListenSockets().getFirst()).getPort()), Map.class);
        @SuppressWarnings("deprecation")
        ManagedChannel ch = NettyChannelBuilder.forTarget("xds:///" + TARGET)
                .nameResolverFactory(XdsNameResolverProvider.createForTest("xds", bootstrap)).usePlaintext().build();
        channels.add(ch);

        int calls = 400;
        int toV2 = 0;
        for (int i = 0; i < calls; i++) {
            String answer = call(ch, null);
            assertThat(answer).isIn("v1", "v2");
            toV2 += answer.equals("v2") ? 1 : 0;
        }
        // 20 % of 400 is 80 (standard deviation 8): ±32 is four deviations.
        assertThat(toV2).as("calls to v2 of %d", calls).isBetween(48, 112);
        for (int i = 0; i < 50; i++) {
            assertThat(call(ch, "v2")).as("x-version: v2 goes to v2 only").isEqualTo("v2");
        }

        String rds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
        EnvoyDiscovery.Ack ack = cp.envoy().ack("proxyless-test", rds);
        assertThat(ack.version()).as("the client ACKed the control plane's generation").isEqualTo(version);
        assertThat(ack.resourceNames()).containsExactly(TARGET);

        // The agents' TLS port serves the same RouteConfiguration, to a node credential only.
        TrustBundle bundle = TrustBundle.read("cluster.local", cp.caDir().resolve("bundle.pem"));
        ManagedChannel tls = ControlPlaneClient.channel("127.0.0.1", cp.xdsPort(), () -> bundle);
        channels.add(tls);
        String token = Files.readString(cp.credentials().tokenFile("node-a")).trim();
        DiscoveryResponse overTls = fetch(tls, "Bearer " + token, rds);
        assertThat(overTls.getVersionInfo()).isEqualTo(version);
        RouteConfiguration rc = overTls.getResources(0).unpack(RouteConfiguration.class);
        assertThat(rc.getName()).isEqualTo(TARGET);
        assertThat(rc).isEqualTo(cp.envoy().snapshot().routes().resources().get(TARGET));
        assertThatThrownBy(() -> fetch(tls, "Bearer not-a-token", rds)).isInstanceOf(StatusException.class)
                .hasMessageStartingWith("UNAUTHENTICATED");
    }

    static String service(String name, String selector, String ip, int targetPort) {
        return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + ", namespace: demo}\n"
                + "spec: {selector: {" + selector + "}, clusterIP: " + ip + ", ports: [{name: grpc, port: 8080, "
                + "targetPort: " + targetPort + "}]}\n";
    }

    /** A loopback gRPC server on {@code address} answering {@code name}; returns its port. */
    int version(String name, String address) throws IOException {
        ServerServiceDefinition def = ServerServiceDefinition.builder("wisp.test.Versions")
                .addMethod(WHICH, ServerCalls.asyncUnaryCall((byte[] req, StreamObserver<byte[]> out) -> {
                    out.onNext(name.getBytes(StandardCharsets.UTF_8));
                    out.onCompleted();
                })).build();
        Server s = NettyServerBuilder.forAddress(new InetSocketAddress(address, 0)).addService(def).build().start();
        servers.add(s);
        return ((InetSocketAddress) s.getListenSockets().getFirst()).getPort();
    }

    static String call(ManagedChannel ch, String xVersion) {
        Metadata h = new Metadata();
        if (xVersion != null) {
            h.put(Metadata.Key.of("x-version", Metadata.ASCII_STRING_MARSHALLER), xVersion);
        }
        var intercepted = ClientInterceptors.intercept(ch, MetadataUtils.newAttachHeadersInterceptor(h));
        byte[] answer = ClientCalls.blockingUnaryCall(intercepted, WHICH,
                CallOptions.DEFAULT.withWaitForReady().withDeadlineAfter(30, TimeUnit.SECONDS), new byte[0]);
        return new String(answer, StandardCharsets.UTF_8);
    }

    /** One state-of-the-world request for {@link #TARGET} of {@code typeUrl}; its first response. */
    static DiscoveryResponse fetch(ManagedChannel ch, String authorization, String typeUrl) throws Exception {
        Metadata h = new Metadata();
        h.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), authorization);
        BlockingClientCall<DiscoveryRequest, DiscoveryResponse> call = ClientCalls.blockingBidiStreamingCall(
                ClientInterceptors.intercept(ch, MetadataUtils.newAttachHeadersInterceptor(h)),
                AggregatedDiscoveryServiceGrpc.getStreamAggregatedResourcesMethod(), CallOptions.DEFAULT);
        try {
            call.write(DiscoveryRequest.newBuilder().setNode(Node.newBuilder().setId("tls-test")).setTypeUrl(typeUrl)
                    .addResourceNames(TARGET).build());
            DiscoveryResponse first = call.read(30, TimeUnit.SECONDS);
            assertThat(first).as("an answer within 30 s").isNotNull();
            return first;
        } finally {
            call.cancel("done", null);
        }
    }
}
