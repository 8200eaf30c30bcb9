package dev.wisp.controlplane.xds;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.controlplane.RawGrpc;
import dev.wisp.testing.LogCapture;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.ClientInterceptors;
import io.grpc.ForwardingServerCall;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.ServerCalls;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A node's credential is bound to its node: through a real gRPC server (Netty, loopback) whose
 * calls are given the peer address a test header names (as if they came from that host), node-2's
 * token from node-1's address is refused, counted and logged once; from node-2's own address, from
 * loopback, or with the binding turned off it authenticates node-2; a node gone from the
 * configuration is refused whatever its address.
 */
class NodeBindingTest {
    static final Metadata.Key<String> PEER = Metadata.Key.of("x-test-peer", Metadata.ASCII_STRING_MARSHALLER);
    /** A unary method answering the node the call authenticated as. */
    static final MethodDescriptor<byte[], byte[]> WHO = RawGrpc.unary("test.Who/Am");

    /** Gives the call the remote address named by the x-test-peer header, if any (outermost). */
    static final ServerInterceptor FAKE_PEER = new ServerInterceptor() {
        @Override
        public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                ServerCallHandler<Q, R> next) {
            String peer = headers.get(PEER);
            if (peer == null) {
                return next.startCall(call, headers);
            }
            Attributes attrs = call.getAttributes().toBuilder().set(Grpc.TRANSPORT_ATTR_REMOTE_ADDR,
                    new InetSocketAddress(InetAddress.ofLiteral(peer), 40_000)).build();
            return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
                @Override
                public Attributes getAttributes() {
                    return attrs;
                }
            }, headers);
        }
    };

    @TempDir
    Path state;
    final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    final Map<String, List<InetAddress>> nodes = new ConcurrentHashMap<>(Map.of(
            "node-1", List.of(InetAddress.ofLiteral("10.0.0.1")),
            "node-2", List.of(InetAddress.ofLiteral("10.0.0.2"), InetAddress.ofLiteral("fd00::2"))));
    final NodeDirectory directory = new NodeDirectory() {
        @Override
        public boolean loaded() {
            return true;
        }

        @Override
        public Optional<List<InetAddress>> addresses(String node) {
            return Optional.ofNullable(nodes.get(node));
        }

        @Override
        public boolean inPodCidrs(String node, InetAddress ip) {
            // node-2's pods: 10.2.0.0/24
            return node.equals("node-2") && ip.getAddress().length == 4 && (ip.getAddress()[0] & 0xff) == 10
                    && ip.getAddress()[1] == 2 && ip.getAddress()[2] == 0;
        }
    };
    LocalNodeCredentials credentials;
    Refusals refusals;
    Server bound;
    Server unbound;
    ManagedChannel toBound;
    ManagedChannel toUnbound;

    @BeforeEach
    void start() throws IOException {
        credentials = new LocalNodeCredentials(state);
        credentials.issue(List.of("node-1", "node-2"));
        refusals = new Refusals(registry);
        bound = server(true);
        unbound = server(false);
        toBound = NettyChannelBuilder.forAddress("127.0.0.1", bound.getPort()).usePlaintext().build();
        toUnbound = NettyChannelBuilder.forAddress("127.0.0.1", unbound.getPort()).usePlaintext().build();
    }

    Server server(boolean bindAddresses) throws IOException {
        ServerServiceDefinition who = ServerServiceDefinition.builder("test.Who").addMethod(WHO,
                ServerCalls.asyncUnaryCall((req, out) -> {
                    out.onNext(NodeAuthInterceptor.NODE.get().getBytes(StandardCharsets.UTF_8));
                    out.onCompleted();
                })).build();
        return NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(who,
                        new NodeAuthInterceptor(credentials, directory, refusals, bindAddresses), FAKE_PEER))
                .build().start();
    }

    @AfterEach
    void stop() throws InterruptedException {
        for (ManagedChannel c : List.of(toBound, toUnbound)) {
            c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        for (Server s : List.of(bound, unbound)) {
            s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /** Calls with {@code node}'s token, from {@code peer} (null: the real loopback address). */
    String call(ManagedChannel ch, String node, String peer) {
        Metadata m = new Metadata();
        try {
            m.put(NodeAuthInterceptor.AUTHORIZATION, "Bearer " + Files.readString(credentials.tokenFile(node)).trim());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (peer != null) {
            m.put(PEER, peer);
        }
        try {
            byte[] answer = ClientCalls.blockingUnaryCall(
                    ClientInterceptors.intercept(ch, MetadataUtils.newAttachHeadersInterceptor(m)), WHO,
                    CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[0]);
            return new String(answer, StandardCharsets.UTF_8);
        } catch (StatusRuntimeException e) {
            return e.getStatus().getCode() + ": " + e.getStatus().getDescription();
        }
    }

    double refused(String reason) {
        return registry.get("wisp_controlplane_refused").tag("reason", reason).counter().count();
    }

    @Test
    void nodeTwosTokenFromNodeOnesAddressIsRefusedCountedAndLoggedOnce() {
        try (LogCapture logs = new LogCapture(Refusals.class)) {
            assertThat(call(toBound, "node-2", "10.0.0.1")).startsWith("PERMISSION_DENIED: the credential is node "
                    + "node-2's, whose Node object declares [10.0.0.2, fd00:0:0:0:0:0:0:2], and the call came from "
                    + "10.0.0.1");
            for (int i = 0; i < 20; i++) {
                assertThat(call(toBound, "node-2", "10.0.0.1")).startsWith("PERMISSION_DENIED");
            }
            assertThat(refused("credential_other_address")).isEqualTo(21);
            assertThat(logs.lines()).hasSize(1).first().asString().startsWith(
                    "refused credential_other_address of node node-2: test.Who/Am: the credential is node node-2's");
        }
        // node-1's own token from there is node-1.
        assertThat(call(toBound, "node-1", "10.0.0.1")).isEqualTo("node-1");
    }

    @Test
    void aNodesTokenFromItsOwnAddressesOrLoopbackAuthenticatesIt() {
        assertThat(call(toBound, "node-2", "10.0.0.2")).isEqualTo("node-2");
        assertThat(call(toBound, "node-2", "fd00::2")).isEqualTo("node-2");
        assertThat(call(toBound, "node-2", null)).as("the control plane's own host").isEqualTo("node-2");
        assertThat(call(toUnbound, "node-2", "10.0.0.1")).as("binding turned off (NAT)").isEqualTo("node-2");
        assertThat(refused("credential_other_address")).isZero();
    }

    @Test
    void aNodeGoneFromTheConfigurationIsRefusedFromAnyAddress() {
        nodes.remove("node-2");
        assertThat(call(toBound, "node-2", "10.0.0.2")).startsWith("UNAUTHENTICATED: the credential is node "
                + "node-2's, and the mesh's configuration has no Node node-2");
        assertThat(call(toUnbound, "node-2", null)).startsWith("UNAUTHENTICATED");
        assertThat(refused("node_removed")).isEqualTo(2);
    }

    @Test
    void bindingIsPure() {
        var from = new InetSocketAddress(InetAddress.ofLiteral("10.9.9.9"), 1);
        assertThat(NodeBinding.check("node-2", from, NodeDirectory.NONE, true)).as("before the first reading")
                .isEmpty();
        nodes.put("bare", List.of());
        assertThat(NodeBinding.check("bare", from, directory, true)).as("nothing declared to bind to").isEmpty();
        assertThat(NodeBinding.check("node-2", from, directory, true)).get()
                .extracting(NodeBinding.Refusal::reason).isEqualTo(Refusals.Reason.CREDENTIAL_OTHER_ADDRESS);
        assertThat(NodeBinding.check("node-2", new InetSocketAddress(InetAddress.ofLiteral("10.2.0.7"), 1), directory,
                true)).as("a pod on node-2").isEmpty();
        assertThat(NodeBinding.check("node-1", new InetSocketAddress(InetAddress.ofLiteral("10.2.0.7"), 1), directory,
                true)).as("a pod on node-2 with node-1's credential").get().extracting(NodeBinding.Refusal::reason)
                .isEqualTo(Refusals.Reason.CREDENTIAL_OTHER_ADDRESS);
    }
}
