package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pods' DNS to IPv6 servers, and to IPv4 servers through dual-stack sockets, captured by eBPF
 * ({@code connect6}, {@code sendmsg6}, {@code recvmsg6}) into the node agent's DNS proxy, in a
 * dual-stack {@link LocalMesh} whose agents relay to an upstream at the underlay's IPv6 address. The
 * client pod's {@code resolv.conf} names {@link #nameserver6}, an IPv6 address no one serves: only
 * capture can answer it. A mesh name's AAAA question gets the Service's IPv6 VIP and its A question
 * the IPv4 one, from the agent's state; other names go to the upstream. As {@link PodDnsE2eTest} for
 * IPv4, whose helpers this reuses. The mesh is {@link SharedMeshes.Kind#DUAL}, which
 * {@link DualStackE2eTest} shares.
 */
@SharedMeshes.OnSharedMesh(SharedMeshes.Kind.DUAL)
@Order(3)
class DualStackDnsE2eTest {
    static final String MESH_NAME = PodDnsE2eTest.MESH_NAME;
    static final String OTHER_NAME = PodDnsE2eTest.OTHER_NAME;
    static final String UPSTREAM_ANSWER = PodDnsE2eTest.UPSTREAM_ANSWER;
    static String vip4;
    static String vip6;
    /** The servers the pod asks; no one serves either. */
    static String nameserver6;
    static String nameserver4;
    @TempDir
    static Path dir;
    /** The dual-stack mesh of {@link SharedMeshes}: its agents relay DNS to the stub upstream's IPv6 address. */
    static PodDnsE2eTest.DnsMesh dns;

    @BeforeAll
    static void up() throws Exception {
        dns = SharedMeshes.of(DualStackDnsE2eTest.class);
        ClusterSpec spec = dns.mesh().cluster().spec();
        vip4 = LocalMesh.serviceAddress(spec, 1);
        vip6 = LocalMesh.serviceAddress6(spec, 1);
        nameserver6 = LocalMesh.serviceAddress6(spec, 53);
        nameserver4 = LocalMesh.serviceAddress(spec, 53);
    }

    @Test
    void aPodsResolverAskingAnIpv6ServerGetsBothVipsOfAMeshNameAndTheRestFromTheUpstream() throws Exception {
        // The agent enrolls the pod and opens its DNS listeners after it is ready: ask until answered.
        // getent ahosts: glibc asks A and AAAA over one connected IPv6 UDP socket (connect6, recvmsg6).
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() -> assertThat(
                run("getent", "ahosts", MESH_NAME).lines().map(l -> l.split("\\s+")[0]).distinct().toList())
                .as("getent ahosts in the client pod").containsExactlyInAnyOrder(vip6, vip4));
        assertThat(run("getent", "hosts", MESH_NAME)).as("the IPv6 answer first").startsWith(vip6 + " ");
        assertThat(dns.upstream().asked).as("the upstream never hears of a mesh name").noneMatch(q -> q.contains(
                "server"));

        assertThat(run("getent", "ahostsv4", OTHER_NAME)).startsWith(UPSTREAM_ANSWER + " ");
        assertThat(dns.upstream().asked).as("relayed to the upstream's IPv6 address").contains("udp " + OTHER_NAME);
    }

    @Test
    void anUnconnectedSendtoAndTcpToAnIpv6ServerAreAnsweredAsFromThatServer() throws Exception {
        awaitAnswered();
        long tcpBefore = dns.upstream().count("tcp");
        assertThat(probe(nameserver6, MESH_NAME + "/AAAA", OTHER_NAME)).as("sendmsg6 and recvmsg6, then TCP over "
                + "connect6").containsExactly("udp [" + nameserver6 + "]:53 " + vip6, "tcp " + UPSTREAM_ANSWER);
        assertThat(dns.upstream().count("tcp")).isEqualTo(tcpBefore + 1);
    }

    @Test
    void anIpv4ServerReachedThroughADualStackSocketIsAnsweredTooAsFromThatServer() throws Exception {
        awaitAnswered();
        // An AF_INET6 socket sending to an IPv4-mapped address: the IPv4 listener answers, and the
        // answer reads as from the mapped server the socket addressed.
        String mapped = "::ffff:" + nameserver4;
        assertThat(probe(mapped, MESH_NAME, OTHER_NAME)).containsExactly("udp [" + mapped + "]:53 " + vip4, "tcp "
                + UPSTREAM_ANSWER);
    }

    static void awaitAnswered() {
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofSeconds(1)).untilAsserted(() -> assertThat(
                run("getent", "hosts", MESH_NAME)).startsWith(vip6 + " "));
    }

    static List<String> probe(String server, String udpName, String tcpName) throws Exception {
        return run("python3", PodDnsE2eTest.probeScript(dir).toString(), server, udpName, tcpName).lines().toList();
    }

    static String run(String... command) throws Exception {
        return PodDnsE2eTest.run(dns.mesh(), command);
    }
}
