package dev.wisp.node;

import static dev.wisp.node.Fixtures.node;
import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;

import dev.wisp.api.workload.v1.Resource;
import dev.wisp.node.identity.Identities;
import dev.wisp.testing.EchoServer;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Two agents in this JVM on loopback: node n1 at 127.0.0.1 (client workload pod-a, standing for
 * SOCKS5 clients on loopback), node n2 at 127.0.0.2 (echo workload pod-b at 127.0.0.3), one CA.
 * Both indexes receive the same resources, as a control plane would send them.
 */
public final class TwoAgents implements AutoCloseable {
    public static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
    public static final String SERVER_ID = "spiffe://cluster.local/ns/default/sa/server";
    public final CertificateAuthority ca;
    private final List<Identities> identities = new ArrayList<>();
    public final EchoServer echo;
    public final NodeAgent n1;
    public final NodeAgent n2;
    public final List<Resource> workloads = new ArrayList<>();

    public TwoAgents(Duration drain) throws Exception {
        ca = CertificateAuthority.inMemory(CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()));
        echo = new EchoServer(new InetSocketAddress("127.0.0.3", 0));
        n1 = NodeAgent.start(config("n1", "127.0.0.1", drain).socks5Workload("pod-a").build(), WorkloadIndex.create());
        n2 = NodeAgent.start(config("n2", "127.0.0.2", drain).build(), WorkloadIndex.create());
        workloads.add(res(workload("pod-a", "client", "n1", "127.0.0.4")));
        workloads.add(res(workload("pod-b", "server", "n2", "127.0.0.3")));
        List<Resource> nodes = List.of(node("n1", "127.0.0.1", n1.addresses().get("hbone").getPort()),
                node("n2", "127.0.0.2", n2.addresses().get("hbone").getPort()));
        for (NodeAgent a : List.of(n1, n2)) {
            a.index().apply(StateUpdates.NODE, nodes, List.of());
            a.index().apply(StateUpdates.WORKLOAD, workloads, List.of());
        }
    }

    /**
     * The agents for a test class's static {@code @AutoClose} field: started when the class is
     * initialised, closed after its last test.
     */
    public static TwoAgents started(Duration drain) {
        try {
            return new TwoAgents(drain);
        } catch (Exception e) {
            throw new IllegalStateException("cannot start the two loopback agents: " + e.getMessage(), e);
        }
    }

    private NodeConfig.Builder config(String name, String address, Duration drain) {
        Identities ids = Identities.local(ca, name);
        identities.add(ids);
        // Captured connections (15001 on n1, 15006 on n2) were all going to the echo workload.
        return NodeConfig.builder(name, ids).bindAddress(InetAddress.ofLiteral(address)).ports(0, 0, 0, 0, 0, 0, 0)
                .resolver(dev.wisp.node.proxy.OriginalDestinationResolver.fixed(echo.address()))
                .drainTimeout(drain).workerThreads(2);
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
        identities.forEach(Identities::close);
    }
}
