package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.base.Closing;
import dev.wisp.base.IpText;
import dev.wisp.linux.NetworkNamespace;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.Prerequisites;
import dev.wisp.testing.StubResolver;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pods' DNS captured by eBPF into the node agent's DNS proxy, end to end in a {@link LocalMesh}
 * whose agents run with {@code --dns-upstream}. The client pod's resolver (its {@code resolv.conf},
 * given by {@code ip netns exec}'s {@code /etc/netns/<ns>/}) names {@link #nameserver}, an address
 * no one serves: only capture can answer it. A mesh service name comes back as the service's VIP
 * from the agent's state; other names go to an upstream this test runs in the cluster's underlay
 * namespace. Covered: glibc's connected UDP ({@code getent}), an unconnected {@code sendto()} and
 * TCP (a Python stub resolver), and that the answer's source is the server the pod addressed. The
 * mesh is {@link SharedMeshes.Kind#IPV4}, which {@link MeshTrafficE2eTest} shares.
 */
@SharedMeshes.OnSharedMesh(SharedMeshes.Kind.IPV4)
@Order(1)
class PodDnsE2eTest {
    static final String MESH_NAME = "server.default.svc.cluster.local";
    static final String OTHER_NAME = "db.example.org";
    static final String UPSTREAM_ANSWER = StubResolver.ADDRESS.getHostAddress();
    @TempDir
    static Path dir;
    /** The service's VIP, and the address the pod's resolv.conf names (no one serves it). */
    static String vip;
    static String nameserver;
    /** The IPv4 mesh of {@link SharedMeshes}: its agents relay DNS to the stub upstream. */
    static DnsMesh dns;

    @BeforeAll
    static void up() throws Exception {
        dns = SharedMeshes.of(PodDnsE2eTest.class);
        vip = LocalMesh.serviceAddress(dns.mesh().cluster().spec(), 1);
        nameserver = LocalMesh.serviceAddress(dns.mesh().cluster().spec(), 53);
    }

    /**
     * A mesh whose agents relay DNS ({@code --dns-upstream}) to a {@link StubResolver} on port 53 of
     * {@code upstreamAddress} (the underlay bridge's, of either family: checked) in the cluster's
     * underlay namespace, pod client's {@code resolv.conf} naming {@code nameserver}; {@link #close}
     * takes it all down and checks for leftovers.
     */
    record DnsMesh(LocalMesh mesh, StubResolver upstream, ResolvConf resolvConf) implements AutoCloseable {
        static DnsMesh up(MeshSpec.Builder spec, String upstreamAddress, String nameserver) throws Exception {
            // getent: glibc's stub resolver (connected UDP); python3: a resolver that uses sendto() and TCP.
            Prerequisites.requireCommands("getent", "python3");
            InetAddress at = InetAddress.ofLiteral(upstreamAddress);
            LocalMesh mesh = PodApps.up(spec.agentArg("--dns-upstream").agentArg(IpText.hostPort(at, 53)));
            StubResolver upstream = null;
            try {
                assertThat(List.of(mesh.cluster().underlayAddress(), mesh.cluster().underlayAddress6())).as(
                        "the underlay bridge's addresses").contains(upstreamAddress);
                upstream = NetworkNamespace.call(NetworkNamespace.named(mesh.cluster().underlayNetns()),
                        () -> new StubResolver(new InetSocketAddress(at, 53)));
                return new DnsMesh(mesh, upstream, ResolvConf.write(mesh.pod("client").netns(), nameserver));
            } catch (Exception e) {
                Closing.inOrder(upstream, () -> PodApps.down(mesh, mesh.name()));
                throw e;
            }
        }

        @Override
        public void close() throws Exception {
            Closing.inOrder(resolvConf, upstream, () -> PodApps.down(mesh, mesh.name()));
        }
    }

    @Test
    void aPodsResolverGetsMeshNamesFromTheAgentAndTheRestFromTheUpstream() throws Exception {
        // The agent enrolls the pod and opens its DNS listener after it is ready: ask until answered.
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() -> assertThat(
                run("getent", "hosts", MESH_NAME)).as("getent hosts in the client pod").startsWith(vip + " "));
        assertThat(dns.upstream().asked).as("the upstream never hears of a mesh name").noneMatch(q -> q.contains(
                "server"));

        assertThat(run("getent", "hosts", OTHER_NAME)).startsWith(UPSTREAM_ANSWER + " ");
        assertThat(dns.upstream().asked).contains("udp " + OTHER_NAME);

        List<String> probe = run("python3", probeScript().toString(), nameserver, MESH_NAME, OTHER_NAME).lines()
                .toList();
        assertThat(probe).as("an unconnected sendto() and TCP, answered as from the server the pod addressed")
                .containsExactly("udp " + nameserver + ":53 " + vip, "tcp " + UPSTREAM_ANSWER);
        assertThat(dns.upstream().asked).contains("tcp " + OTHER_NAME);
    }

    @Test
    void aPodCannotTakeTheAgentsDnsPortInItsOwnNamespace() throws Exception {
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() -> assertThat(
                run("getent", "hosts", MESH_NAME)).startsWith(vip + " "));

        // SO_REUSEPORT: without the bind hook, a root process of the pod could join the agent's
        // socket and take half of the pod's DNS queries.
        assertThat(run("python3", "-c", "import socket\n" + "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                + "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n" + "try:\n"
                + "    s.bind(('127.0.0.1', 15053))\n" + "    print('bound')\n" + "except OSError as e:\n"
                + "    print('errno', e.errno)")).as("a UDP bind of the DNS port in the pod").isEqualTo("errno 1\n");
        assertThat(run("getent", "hosts", MESH_NAME)).as("the agent's listener still answers").startsWith(vip
                + " ");
    }

    /** Runs {@code command} in the client pod (its cgroup and namespace) and returns its output. */
    static String run(String... command) throws Exception {
        return run(dns.mesh(), command);
    }

    /** Runs {@code command} in {@code mesh}'s pod client (its cgroup and namespace) and returns its output. */
    static String run(LocalMesh mesh, String... command) throws Exception {
        Process p = mesh.startInPod("client", List.of(command));
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("%s ended", List.of(command)).isTrue();
        return new String(out, StandardCharsets.UTF_8);
    }

    static Path probeScript() throws IOException {
        return probeScript(dir);
    }

    /** {@code dns_probe.py} written to {@code dir} (once). */
    static Path probeScript(Path dir) throws IOException {
        Path script = dir.resolve("dns_probe.py");
        if (!Files.exists(script)) {
            try (InputStream in = PodDnsE2eTest.class.getResourceAsStream("dns_probe.py")) {
                Files.write(script, in.readAllBytes());
            }
        }
        return script;
    }

    /**
     * {@code /etc/netns/<netns>/resolv.conf}, which {@code ip netns exec} mounts over
     * {@code /etc/resolv.conf} for commands in that namespace; {@link #close} removes it, and
     * {@code /etc/netns} too when this made it and it is empty.
     */
    record ResolvConf(Path dir, boolean madeParent) implements AutoCloseable {
        static ResolvConf write(String netns, String nameserver) throws IOException {
            Path dir = Path.of("/etc/netns", netns);
            boolean madeParent = !Files.exists(dir.getParent());
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("resolv.conf"), "nameserver " + nameserver
                    + "\noptions timeout:2 attempts:2\n");
            return new ResolvConf(dir, madeParent);
        }

        @Override
        public void close() throws IOException {
            Files.deleteIfExists(dir.resolve("resolv.conf"));
            Files.deleteIfExists(dir);
            if (madeParent) {
                try (var left = Files.list(dir.getParent())) {
                    if (left.findAny().isEmpty()) {
                        Files.delete(dir.getParent());
                    }
                }
            }
        }
    }
}
