package dev.wisp.waypoint.xds;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.ApiListener;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.Rds;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The ADS client against a scripted server on loopback: it follows the listeners' route names with
 * RDS and the clusters with EDS, ACKs, prunes what is no longer named, and NACKs what does not decode.
 */
class AdsClientTest {
    private final BlockingQueue<DiscoveryRequest> asked = new LinkedBlockingQueue<>();
    private final AtomicReference<StreamObserver<DiscoveryResponse>> answers = new AtomicReference<>();
    private final BlockingQueue<EnvoyConfig> published = new LinkedBlockingQueue<>();
    private Server server;
    private ManagedChannel channel;
    private AdsClient client;

    @AfterEach
    void close() throws Exception {
        if (client != null) {
            client.close();
        }
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        if (server != null) {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void followsListenersAndClustersByNameAndPrunesWhatIsNoLongerNamed() throws Exception {
        start();
        assertThat(List.of(next(), next())).extracting(DiscoveryRequest::getTypeUrl).containsExactlyInAnyOrder(
                AdsClient.LDS, AdsClient.CDS);

        respond(AdsClient.LDS, "1", listener("10.0.0.1:80"), listener("10.0.0.2:80"));
        assertThat(next()).satisfies(ack -> {
            assertThat(ack.getTypeUrl()).isEqualTo(AdsClient.LDS);
            assertThat(ack.getVersionInfo()).isEqualTo("1");
        });
        assertThat(next()).satisfies(rds -> {
            assertThat(rds.getTypeUrl()).isEqualTo(AdsClient.RDS);
            assertThat(rds.getResourceNamesList()).containsExactly("10.0.0.1:80", "10.0.0.2:80");
        });
        respond(AdsClient.RDS, "1", route("10.0.0.1:80"), route("10.0.0.2:80"));
        assertThat(next().getResourceNamesList()).as("the RDS ACK keeps the names").hasSize(2);

        respond(AdsClient.CDS, "1", Any.pack(Cluster.newBuilder().setName("outbound|80||a").build()));
        assertThat(next().getTypeUrl()).isEqualTo(AdsClient.CDS);
        assertThat(next()).satisfies(eds -> {
            assertThat(eds.getTypeUrl()).isEqualTo(AdsClient.EDS);
            assertThat(eds.getResourceNamesList()).containsExactly("outbound|80||a");
        });
        respond(AdsClient.EDS, "1", Any.pack(ClusterLoadAssignment.newBuilder().setClusterName("outbound|80||a")
                .build()));
        next();
        for (int accepted = 0; accepted < 3; accepted++) {
            published(); // LDS, RDS, CDS
        }
        EnvoyConfig all = published();
        assertThat(all.routes()).containsOnlyKeys("10.0.0.1:80", "10.0.0.2:80");
        assertThat(all.endpoints()).containsOnlyKeys("outbound|80||a");

        respond(AdsClient.LDS, "2", listener("10.0.0.2:80"));
        next();
        assertThat(next().getResourceNamesList()).as("RDS re-subscribed").containsExactly("10.0.0.2:80");
        EnvoyConfig pruned = published();
        assertThat(pruned.routes()).as("the route no listener names is dropped").containsOnlyKeys("10.0.0.2:80");
        assertThat(pruned.endpoints()).containsOnlyKeys("outbound|80||a");
        assertThat(client.current()).isEqualTo(pruned);
    }

    @Test
    void aResponseThatDoesNotDecodeIsRefusedAndThePreviousOneStays() throws Exception {
        start();
        next();
        next();
        respond(AdsClient.LDS, "1", listener("10.0.0.1:80"));
        next();
        next();
        respond(AdsClient.RDS, "1", route("10.0.0.1:80"));
        next();
        published();
        published();
        respond(AdsClient.RDS, "2", Any.pack(Cluster.newBuilder().setName("not a route").build()));
        DiscoveryRequest nack = next();
        assertThat(nack.getVersionInfo()).as("still the accepted version").isEqualTo("1");
        assertThat(nack.getErrorDetail().getMessage()).startsWith("cannot decode");
        assertThat(client.current().routes()).containsOnlyKeys("10.0.0.1:80");
    }

    private void start() throws Exception {
        server = NettyServerBuilder.forAddress(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))
                .addService(new AggregatedDiscoveryServiceGrpc.AggregatedDiscoveryServiceImplBase() {
                    @Override
                    public StreamObserver<DiscoveryRequest> streamAggregatedResources(
                            StreamObserver<DiscoveryResponse> responses) {
                        answers.set(responses);
                        return new StreamObserver<>() {
                            @Override
                            public void onNext(DiscoveryRequest r) {
                                asked.add(r);
                            }

                            @Override
                            public void onError(Throwable t) {}

                            @Override
                            public void onCompleted() {}
                        };
                    }
                }).build().start();
        channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext().build();
        client = new AdsClient(channel, new NoCredentials(), "waypoint~test", published::add);
        client.start();
    }

    private DiscoveryRequest next() throws InterruptedException {
        DiscoveryRequest r = asked.poll(60, TimeUnit.SECONDS); // returns when it comes; 10 s failed at load 40-58
        assertThat(r).as("a request from the client").isNotNull();
        return r;
    }

    /** The configuration the next accepted response published (after its ACK is sent). */
    private EnvoyConfig published() throws InterruptedException {
        EnvoyConfig c = published.poll(60, TimeUnit.SECONDS);
        assertThat(c).as("a published configuration").isNotNull();
        return c;
    }

    private void respond(String type, String version, Any... resources) {
        answers.get().onNext(DiscoveryResponse.newBuilder().setTypeUrl(type).setVersionInfo(version).setNonce(
                type + version).addAllResources(List.of(resources)).build());
    }

    private static Any listener(String routeName) {
        HttpConnectionManager hcm = HttpConnectionManager.newBuilder().setRds(Rds.newBuilder().setRouteConfigName(
                routeName)).build();
        return Any.pack(Listener.newBuilder().setName(routeName).setApiListener(ApiListener.newBuilder()
                .setApiListener(Any.pack(hcm))).build());
    }

    private static Any route(String name) {
        return Any.pack(RouteConfiguration.newBuilder().setName(name).build());
    }

    /** The test server checks no credential. */
    private static final class NoCredentials extends CallCredentials {
        @Override
        public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
            applier.apply(new Metadata());
        }
    }
}
