package dev.wisp.node;

import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;

import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.proxy.OriginalDestinationResolver;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.proxy.HboneClient;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.testing.EchoServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * Two agents in this JVM on loopback, built by {@link NodeRuntime#build} as {@code wisp node}
 * builds them (standalone: an empty state file and one CA directory shared by both): node n1 at
 * 127.0.0.1 (client workload pod-a, standing for SOCKS5 clients on loopback), node n2 at 127.0.0.2
 * (echo workload pod-b at 127.0.0.3). Both indexes then receive the same resources, as a control
 * plane would send them. The one difference from production: captured connections' original
 * destination is the echo server (there is no eBPF here).
 */
public final class TwoAgents implements AutoCloseable {
    public static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    public static final String SERVER_ID = "spiffe://cluster.local/ns/default/sa/server";
    private final Path dir;
    public final EchoServer echo;
    public final NodeRuntime n1;
    public final NodeRuntime n2;
    public final List<Resource> workloads = new ArrayList<>();
    /** The CA both agents' standalone identities come from, for clients that must be trusted by them. */
    public final CertificateAuthority ca;

    public TwoAgents(Duration drain) throws Exception {
        this(drain, NodeSettings.DEFAULT_HBONE_PROTOCOL);
    }

    /** With n1 (the client side) dialling n2 over {@code hbone} ({@code --hbone}; empty: as the mesh says). */
    public TwoAgents(Duration drain, Optional<HboneClient.Mode> hbone) throws Exception {
        this(drain, hbone, UnaryOperator.identity());
    }

    /** As {@link #TwoAgents(Duration, Optional)}, n1's settings changed by {@code n1Settings}. */
    public TwoAgents(Duration drain, Optional<HboneClient.Mode> hbone, UnaryOperator<NodeSettings> n1Settings)
            throws Exception {
        dir = Files.createTempDirectory("wisp-two-agents");
        echo = new EchoServer(new InetSocketAddress("127.0.0.3", 0));
        n1 = start(n1Settings.apply(settings(dir, "n1", "127.0.0.1", drain).withSocks5Workload("pod-a")), hbone);
        n2 = start(settings(dir, "n2", "127.0.0.2", drain));
        ca = CertificateAuthority.createOrLoad(dir.resolve("ca"), CaSettings.of("cluster.local", NodeAuthorizer
                .unrestricted()));
        workloads.add(res(workload("pod-a", "client", "n1", "127.0.0.4")));
        workloads.add(res(workload("pod-b", "server", "n2", "127.0.0.3")));
        List<Resource> nodes = List.of(node("n1", "127.0.0.1", n1.addresses().get("hbone").getPort()),
                node("n2", "127.0.0.2", n2.addresses().get("hbone").getPort()));
        for (NodeRuntime a : List.of(n1, n2)) {
            a.index().apply(StateUpdates.NODE, nodes, List.of());
            a.index().apply(StateUpdates.WORKLOAD, workloads, List.of());
        }
    }

    /**
     * The agents for a test class's static {@code @AutoClose} field: started when the class is
     * initialised, closed after its last test.
     */
    public static TwoAgents started(Duration drain) {
        return started(drain, NodeSettings.DEFAULT_HBONE_PROTOCOL);
    }

    /** As {@link #started(Duration)}, n1 dialling over {@code hbone}. */
    public static TwoAgents started(Duration drain, HboneClient.Mode hbone) {
        return started(drain, Optional.of(hbone));
    }

    /** As {@link #started(Duration)}, n1 dialling over {@code hbone} (empty: as the mesh says). */
    public static TwoAgents started(Duration drain, Optional<HboneClient.Mode> hbone) {
        return started(drain, hbone, UnaryOperator.identity());
    }

    /** As {@link #started(Duration, Optional)}, n1's settings changed by {@code n1Settings}. */
    public static TwoAgents started(Duration drain, Optional<HboneClient.Mode> hbone,
            UnaryOperator<NodeSettings> n1Settings) {
        try {
            return new TwoAgents(drain, hbone, n1Settings);
        } catch (Exception e) {
            throw new IllegalStateException("cannot start the two loopback agents: " + e.getMessage(), e);
        }
    }

    /** Standalone settings of an agent at {@code address} with every port chosen by the kernel. */
    static NodeSettings settings(Path dir, String name, String address, Duration drain) throws IOException {
        Path state = dir.resolve(name + "-state.yaml");
        Files.writeString(state, "resources: []\n");
        return NodeSettings.of(name, new NodeSettings.Source.Standalone(state, dir.resolve("ca")))
                .withBindAddress(InetAddress.ofLiteral(address)).withPorts(NodeSettings.Ports.EPHEMERAL)
                .withDrainTimeout(drain).withWorkerThreads(2);
    }

    private NodeRuntime start(NodeSettings settings, Optional<HboneClient.Mode> hbone) throws IOException {
        return start(hbone.map(settings::withHboneProtocol).orElse(settings));
    }

    private NodeRuntime start(NodeSettings settings) throws IOException {
        // Captured connections (15001 on n1, 15006 on n2) were all going to the echo workload.
        return NodeRuntime.build(settings, Optional.of(OriginalDestinationResolver.fixed(echo.address())));
    }

    /** Applies {@code update} of {@code type} to both agents. */
    public void apply(String type, List<Resource> resources, List<String> removed) throws Exception {
        n1.index().apply(type, resources, removed);
        n2.index().apply(type, resources, removed);
    }

    public InetSocketAddress socks() {
        return n1.addresses().get("socks5");
    }

    @Override
    public void close() throws Exception {
        n1.close();
        n2.close();
        echo.close();
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
