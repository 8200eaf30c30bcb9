package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.base.Closing;
import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.local.InNetns;
import dev.wisp.local.LocalMesh;
import dev.wisp.testing.EchoServer;
import dev.wisp.testing.Netns;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.testing.Prerequisites;
import dev.wisp.wireguard.Key;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * WireGuard between the nodes of a {@link LocalMesh} (on by default, strict): UDP, TCP from outside
 * the mesh and ICMP between a pod on node 1 and a pod on node 2 cross the underlay only as WireGuard
 * transport messages between the node addresses, as a capture on the underlay bridge shows; the
 * devices count the bytes; {@code wg show} reads an agent's device; peers are installed just in
 * time by the first packet in either direction and removed after the idle time ({@value #IDLE_SECONDS}
 * s here), and traffic installs them again, also while the control plane is down; with the device
 * gone the echo fails rather than crossing in clear.
 *
 * <p>The test's own sockets are opened inside the pods' namespaces by the test JVM, which is not in
 * the pods' cgroups: eBPF capture does not see them, so they stand for a workload outside the mesh
 * and go through the kernel's routing, i.e. through WireGuard.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class MeshWireGuardE2eTest {
    static final String CLUSTER = "wgmesh";
    static final int UDP_PORT = 7000;
    static final int TCP_PORT = 7001;
    static final int WG_PORT = 51820;
    static final int IDLE_SECONDS = 5;
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static String clientNs;
    static String serverNs;
    static InetAddress server;
    static CompletableFuture<Void> udpEcho;
    static EchoServer tcpEcho;
    static volatile boolean stopping;

    @BeforeAll
    static void up() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nsenter", "tcpdump", "ping", "wg");
        mesh = LocalMesh.up(PodApps.clientServerMesh(CLUSTER, 50, dir).meshConfig("""
                apiVersion: wisp.dev/v1alpha1
                kind: MeshConfig
                metadata: {name: mesh}
                spec: {wireguard: {peerIdleTimeout: %ds}}
                """.formatted(IDLE_SECONDS)).build());
        clientNs = mesh.pod("client").netns();
        serverNs = mesh.pod("server").netns();
        server = InetAddress.ofLiteral(mesh.pod("server").ip());
        udpEcho = Netns.start(serverNs, () -> {
            udpEchoServer();
            return null;
        });
        tcpEcho = Netns.call(serverNs, () -> new EchoServer(new InetSocketAddress(TCP_PORT)), Duration.ofSeconds(
                10));
    }

    @AfterAll
    static void down() throws Exception {
        stopping = true;
        Closing.inOrder(tcpEcho);
        PodApps.down(mesh, CLUSTER);
    }

    /** Echoes datagrams until the test ends (bounded by a receive time-out loop). */
    static void udpEchoServer() throws IOException {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(UDP_PORT))) {
            dev.wisp.cli.demo.UdpEcho.echoUntil(s, () -> stopping);
        }
    }

    /** One UDP round trip from the client pod; the reply, or null after 2 s. */
    static String udpCall(String payload) throws Exception {
        return udpCall(clientNs, server, payload);
    }

    /** One UDP round trip from namespace {@code ns} to {@code server}; the reply, or null after 2 s. */
    static String udpCall(String ns, InetAddress server, String payload) throws Exception {
        return Netns.call(ns, () -> {
            try (DatagramSocket s = new DatagramSocket()) {
                s.setSoTimeout(2000);
                byte[] out = payload.getBytes(StandardCharsets.US_ASCII);
                s.send(new DatagramPacket(out, out.length, new InetSocketAddress(server, UDP_PORT)));
                DatagramPacket in = new DatagramPacket(new byte[2048], 2048);
                try {
                    s.receive(in);
                } catch (SocketTimeoutException e) {
                    return null;
                } catch (IOException e) {
                    return "error: " + e.getMessage();
                }
                return new String(in.getData(), 0, in.getLength(), StandardCharsets.US_ASCII);
            } catch (IOException e) {
                return "error: " + e.getMessage();
            }
        }, Duration.ofSeconds(10));
    }

    static String metrics(String node) throws IOException {
        return metricsOf(mesh, node);
    }

    /** {@code node}'s agent's {@code /metrics} in {@code m}. */
    static String metricsOf(LocalMesh m, String node) throws IOException {
        return InNetns.httpGet(m.node(node).netns(), new InetSocketAddress(m.node(node).address(), 15020),
                "/metrics");
    }

    static double metric(String text, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " ([0-9.eE+-]+|NaN)$").matcher(text);
        return m.find() ? Double.parseDouble(m.group(1)) : -1;
    }

    static String sh(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        return out;
    }

    /** A capture of the underlay bridge, read back as IP packets. */
    static final class Capture implements AutoCloseable {
        final Path file;
        final Process tcpdump;

        Capture(String name) throws Exception {
            this(mesh.cluster().underlayNetns(), dir, name);
        }

        /** Captures the bridge {@code br0} of {@code underlayNetns} into {@code dir/name.pcap}. */
        Capture(String underlayNetns, Path dir, String name) throws Exception {
            this(underlayNetns, dir, name, "ip");
        }

        /** The same with the tcpdump filter {@code filter} (e.g. {@code ip or ip6}). */
        Capture(String underlayNetns, Path dir, String name, String filter) throws Exception {
            file = dir.resolve(name + ".pcap");
            Path err = dir.resolve(name + ".err");
            tcpdump = new ProcessBuilder("ip", "netns", "exec", underlayNetns, "tcpdump", "-i", "br0",
                    "-n", "-U", "--immediate-mode", "-w", file.toString(), filter).redirectErrorStream(true)
                    .redirectOutput(err.toFile())
                    .start();
            await().atMost(Duration.ofSeconds(20)).until(() -> Files.exists(err) && Files.readString(err).contains(
                    "listening on"));
        }

        /** Stops once at least {@code packets} IP packets are written (10 s at most), and reads them. */
        List<IpPacket> stop(int packets) throws Exception {
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> Pcap.packets(Files.readAllBytes(file)).size() >= packets);
            close();
            return Pcap.packets(Files.readAllBytes(file));
        }

        @Override
        public void close() throws Exception {
            if (tcpdump.isAlive()) {
                tcpdump.destroy();
                tcpdump.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    record IpPacket(InetAddress src, InetAddress dst, int protocol, byte[] payload, byte[] whole) {
        int srcPort() {
            return ((payload[0] & 0xff) << 8) | (payload[1] & 0xff);
        }

        int dstPort() {
            return ((payload[2] & 0xff) << 8) | (payload[3] & 0xff);
        }

        /** The WireGuard message type of a UDP datagram's payload (first byte after the 8-byte UDP header). */
        int wireGuardType() {
            return payload.length > 8 ? payload[8] & 0xff : -1;
        }
    }

    /**
     * pcap (tcpdump -w) → the IP packets of its Ethernet frames: IPv4, and IPv6 with the payload
     * right after the fixed 40-byte header (extension headers are not followed: their next header
     * is reported as the protocol).
     */
    static final class Pcap {
        static List<IpPacket> packets(byte[] f) throws IOException {
            List<IpPacket> out = new ArrayList<>();
            int at = 24;
            while (at + 16 <= f.length) {
                int incl = le32(f, at + 8);
                int frame = at + 16;
                at = frame + incl;
                if (at > f.length || incl < 34) {
                    continue;
                }
                int type = (f[frame + 12] & 0xff) << 8 | (f[frame + 13] & 0xff);
                int ip = frame + 14;
                byte[] whole = Arrays.copyOfRange(f, frame, frame + incl);
                if (type == 0x0800) {
                    int ihl = (f[ip] & 0x0f) * 4;
                    out.add(new IpPacket(address(f, ip + 12, 4), address(f, ip + 16, 4), f[ip + 9] & 0xff, Arrays
                            .copyOfRange(f, ip + ihl, frame + incl), whole));
                } else if (type == 0x86dd && incl >= 14 + 40) {
                    out.add(new IpPacket(address(f, ip + 8, 16), address(f, ip + 24, 16), f[ip + 6] & 0xff, Arrays
                            .copyOfRange(f, ip + 40, frame + incl), whole));
                }
            }
            return out;
        }

        static InetAddress address(byte[] f, int at, int length) throws IOException {
            return InetAddress.getByAddress(Arrays.copyOfRange(f, at, at + length));
        }

        static int le32(byte[] b, int i) {
            return (b[i] & 0xff) | (b[i + 1] & 0xff) << 8 | (b[i + 2] & 0xff) << 16 | (b[i + 3] & 0xff) << 24;
        }
    }

    static boolean contains(byte[] hay, byte[] needle) {
        outer : for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }

    /**
     * Every packet between the two node addresses is WireGuard UDP (port 51820 both ways, message
     * type 1-4), at least one is a transport message (type 4) of at least {@code minSize} bytes, no
     * packet carries {@code marker}, and no pod address appears on the underlay.
     */
    static void assertOnlyWireGuard(List<IpPacket> packets, byte[] marker, int minSize) throws Exception {
        assertOnlyWireGuard(packets, Set.of(InetAddress.ofLiteral(mesh.node("node1").address()), InetAddress
                .ofLiteral(mesh.node("node2").address())), Set.of(server,
                        InetAddress.ofLiteral(mesh.pod("client")
                                .ip())),
                minSize);
        assertThat(packets).noneMatch(p -> contains(p.whole(), marker));
    }

    /**
     * Every packet between {@code nodes} is WireGuard UDP (port 51820 both ways, message type 1-4),
     * at least one is a transport message (type 4) of at least {@code minSize} bytes, and no packet
     * has one of {@code pods} as its source or destination.
     */
    static void assertOnlyWireGuard(List<IpPacket> packets, Set<InetAddress> nodes, Set<InetAddress> pods,
            int minSize) {
        List<IpPacket> between = packets.stream().filter(p -> nodes.contains(p.src()) && nodes.contains(p.dst()))
                .toList();
        assertThat(between).isNotEmpty();
        assertThat(between).allSatisfy(p -> {
            assertThat(p.protocol()).as("IP protocol between the nodes").isEqualTo(17);
            assertThat(p.srcPort()).isEqualTo(WG_PORT);
            assertThat(p.dstPort()).isEqualTo(WG_PORT);
            assertThat(p.wireGuardType()).isBetween(1, 4);
        });
        assertThat(between).anySatisfy(p -> {
            assertThat(p.wireGuardType()).isEqualTo(4);
            assertThat(p.payload().length - 8).isGreaterThanOrEqualTo(minSize);
        });
        assertThat(packets).noneMatch(p -> pods.contains(p.src()) || pods.contains(p.dst()));
    }

    static double jit(String node, String metric) throws IOException {
        return metric(metrics(node), metric);
    }

    static final String PEERS = "wisp_wireguard_peers";
    static final String OUTBOUND = "wisp_wireguard_jit_installs_total{direction=\"outbound\"}";
    static final String INBOUND = "wisp_wireguard_jit_installs_total{direction=\"inbound\"}";
    static final String REAPS = "wisp_wireguard_jit_reaps_total";
    static final String DROPPED = "wisp_wireguard_dropped_packets_total";

    static String ping(String fromNs, String to) throws Exception {
        return sh("ip", "netns", "exec", fromNs, "ping", "-c", "1", "-W", "2", to);
    }

    /** Both nodes' devices are empty again: their peers idled out. */
    static void awaitBothReaped() {
        await().atMost(Duration.ofSeconds(IDLE_SECONDS * 4L + 10)).pollInterval(Duration.ofMillis(500)).until(
                () -> jit("node1", PEERS) == 0 && jit("node2", PEERS) == 0);
    }

    @Test
    @Order(1)
    void udpEchoBetweenPodsOnTwoNodesCrossesTheUnderlayOnlyAsWireGuardTransportMessages() throws Exception {
        // Just in time: no node holds a peer before the first packet.
        assertThat(jit("node1", PEERS)).isZero();
        assertThat(jit("node2", PEERS)).isZero();
        // The registry comes from the control plane once both agents published their keys.
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500)).until(() -> "warm-up".equals(
                udpCall("warm-up")));
        double sentBefore = metric(metrics("node1"), "wisp_wireguard_peer_sent_bytes_total{peer=\"node2\"}");
        String marker = "WISP-WG-MARKER-" + Long.toHexString(System.nanoTime());
        String payload = marker + "-" + "x".repeat(400);
        try (Capture c = new Capture("udp")) {
            for (int i = 0; i < 5; i++) {
                assertThat(udpCall(payload)).isEqualTo(payload);
            }
            // Five requests and five answers at least.
            assertOnlyWireGuard(c.stop(10), marker.getBytes(StandardCharsets.US_ASCII), payload.length());
        }
        String after = metrics("node1");
        assertThat(metric(after, "wisp_wireguard_peer_sent_bytes_total{peer=\"node2\"}") - sentBefore)
                .isGreaterThanOrEqualTo(5.0 * payload.length());
        assertThat(metric(after, "wisp_wireguard_peer_received_bytes_total{peer=\"node2\"}"))
                .isGreaterThanOrEqualTo(5.0 * payload.length());
        assertThat(metric(after, "wisp_wireguard_handshakes_total")).isGreaterThanOrEqualTo(1);
        assertThat(metric(after, "wisp_wireguard_peer_last_handshake_age_seconds{peer=\"node2\"}")).isBetween(0.0,
                180.0);
        assertThat(metric(after, "wisp_wireguard_peers")).isEqualTo(1.0);
        // Node 1 sent first (a packet to node 2's pod CIDR); node 2 installed node 1 from its initiation.
        assertThat(metric(after, OUTBOUND)).isGreaterThanOrEqualTo(1);
        assertThat(jit("node2", INBOUND)).isGreaterThanOrEqualTo(1);
        assertThat(jit("node2", PEERS)).isEqualTo(1);
    }

    @Test
    @Order(2)
    void tcpFromOutsideTheMeshAndIcmpAlsoGoThroughWireGuard() throws Exception {
        String marker = "WISP-WG-TCP-" + Long.toHexString(System.nanoTime());
        byte[] payload = (marker + "y".repeat(64 * 1024)).getBytes(StandardCharsets.US_ASCII);
        try (Capture c = new Capture("tcp")) {
            byte[] echoed = Netns.call(clientNs, () -> {
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress(server, TCP_PORT), 5000);
                    s.setSoTimeout(10_000);
                    OutputStream out = s.getOutputStream();
                    out.write(payload);
                    s.shutdownOutput();
                    InputStream in = s.getInputStream();
                    ByteArrayOutputStream got = new ByteArrayOutputStream();
                    in.transferTo(got);
                    return got.toByteArray();
                }
            }, Duration.ofSeconds(30));
            assertThat(echoed).isEqualTo(payload);
            String ping = sh("ip", "netns", "exec", clientNs, "ping", "-c", "3", "-i", "0.2", "-W", "2", server
                    .getHostAddress());
            assertThat(ping).contains("3 received");
            assertOnlyWireGuard(c.stop(20), marker.getBytes(StandardCharsets.US_ASCII), 1000);
        }
    }

    @Test
    @Order(3)
    void wgShowReadsTheAgentsDeviceThroughItsUapiSocket() throws Exception {
        // Traffic now, so that the peer is installed (and not idle) while wg show reads it.
        assertThat(udpCall("show")).isEqualTo("show");
        String iface = mesh.wireguardInterface("node1");
        String show = sh("ip", "netns", "exec", mesh.node("node1").netns(), "wg", "show", iface);
        String node2Key = sh("ip", "netns", "exec", mesh.node("node2").netns(), "wg", "show", mesh
                .wireguardInterface("node2"), "public-key").strip();
        assertThat(show).contains("interface: " + iface).contains("listening port: " + WG_PORT)
                .contains("peer: " + node2Key).contains("endpoint: " + mesh.node("node2").address() + ":" + WG_PORT)
                .contains("latest handshake:").contains("transfer:");
        // node 2's pod CIDR, and its address as an allowed source (what node 2 sends from it to our
        // pods comes through the device), on the one line, in the device's order.
        assertThat(show).containsPattern("allowed ips: .*" + Pattern.quote(mesh.node("node2").podCidr()))
                .containsPattern("allowed ips: .*" + Pattern.quote(mesh.node("node2").address() + "/32"));
        assertThat(show).doesNotContain("private key: " + sh("cat", dir.resolve("wireguard/node1/wireguard-private.key")
                .toString()).strip());
        assertThat(Files.getPosixFilePermissions(dir.resolve("wireguard/node1/wireguard-private.key")))
                .hasToString("[OWNER_READ, OWNER_WRITE]");
        assertThat(mesh.log("node1")).doesNotContain(sh("cat", dir.resolve("wireguard/node1/wireguard-private.key")
                .toString()).strip());
    }

    @Test
    @Order(4)
    void idlePeersAreRemovedAndTheFirstPacketFromTheOtherSideInstallsThemAgain() throws Exception {
        double reapsBefore = jit("node1", REAPS) + jit("node2", REAPS);
        awaitBothReaped();
        assertThat(jit("node1", REAPS) + jit("node2", REAPS)).isGreaterThanOrEqualTo(reapsBefore + 2);
        assertThat(sh("ip", "netns", "exec", mesh.node("node1").netns(), "wg", "show", mesh.wireguardInterface(
                "node1"), "peers").strip()).as("node 1's peers after the idle time").isEmpty();
        assertThat(mesh.log("node1")).contains("removed: idle for " + IDLE_SECONDS + " s");
        // This time node 2's pod speaks first (ICMP to the client pod).
        double node2Out = jit("node2", OUTBOUND);
        double node1In = jit("node1", INBOUND);
        assertThat(ping(serverNs, mesh.pod("client").ip())).contains("1 received");
        assertThat(jit("node2", OUTBOUND)).isEqualTo(node2Out + 1);
        assertThat(jit("node1", INBOUND)).isEqualTo(node1In + 1);
        assertThat(jit("node1", PEERS)).isEqualTo(1);
        assertThat(jit("node2", PEERS)).isEqualTo(1);
    }

    @Test
    @Order(5)
    void withTheControlPlaneDownTrafficGoesOnWithTheLastPeersAndTheirRegistry() throws Exception {
        assertThat(udpCall("before")).isEqualTo("before");
        mesh.killControlPlane();
        try {
            // The installed peers carry on.
            for (int i = 0; i < 3; i++) {
                assertThat(udpCall("cp-down-" + i)).isEqualTo("cp-down-" + i);
            }
            // Peers idle out and are installed again from the registry each agent kept.
            awaitBothReaped();
            assertThat(udpCall("cp-down-again")).isEqualTo("cp-down-again");
            assertThat(jit("node1", PEERS)).isEqualTo(1);
            assertThat(jit("node2", PEERS)).isEqualTo(1);
        } finally {
            mesh.startControlPlane();
        }
        // The restarted control plane sends the same registry: traffic and peers unchanged.
        for (int i = 0; i < 3; i++) {
            assertThat(udpCall("cp-back-" + i)).isEqualTo("cp-back-" + i);
        }
        assertThat(mesh.log("node1")).doesNotContain("its node no longer has this key registered");
    }

    @Test
    @Order(6)
    void aNodeClaimingAnotherNodesPodCidrKeyOrAddressIsRefusedAndTrafficKeepsGoingToTheRightNode()
            throws Exception {
        assertThat(udpCall("before-hijack")).isEqualTo("before-hijack");
        // After the previous test's restart, both agents published their keys again (they reconnect
        // with a backoff of up to 30 s).
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500)).until(() -> metric(mesh
                .controlPlaneAdmin("/metrics"), "wisp_wireguard_registered_nodes") == 2);
        Key node1Key = Key.fromBase64(wgShow("node1", "public-key"));
        Key node2Key = Key.fromBase64(wgShow("node2", "public-key"));
        String node1 = mesh.node("node1").address();
        String node2 = mesh.node("node2").address();
        Key rogueKey = Key.generatePrivate().publicKey();
        // Node 1 compromised: with its own valid credential it claims, one stream each, node 2's pod
        // CIDR, node 2's key, and node 2's address as its endpoint.
        Map<String, WireGuardRegistration> claims = new LinkedHashMap<>();
        claims.put("cidr_not_declared", RogueNode.claim(rogueKey, node1 + ":" + WG_PORT, mesh.node("node2")
                .podCidr()));
        claims.put("key_of_another_node", RogueNode.claim(node2Key, node1 + ":" + WG_PORT, mesh.node("node1")
                .podCidr()));
        claims.put("endpoint_of_another_node", RogueNode.claim(rogueKey, node2 + ":" + WG_PORT, mesh.node("node1")
                .podCidr()));
        for (var c : claims.entrySet()) {
            String refused = "wisp_wireguard_registrations_refused_total{reason=\"" + c.getKey() + "\"}";
            double before = Math.max(0, metric(mesh.controlPlaneAdmin("/metrics"), refused));
            WorkloadIndex seen = WorkloadIndex.create();
            try (ControlPlaneClient rogue = RogueNode.connect(mesh, "node1", c.getValue(), seen)) {
                await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).until(() -> metric(mesh
                        .controlPlaneAdmin("/metrics"), refused) >= before + 1);
                await().atMost(Duration.ofSeconds(30)).until(() -> seen.node("node1").isPresent() && seen.node(
                        "node2").isPresent());
                // The registry as the control plane serves it to every node is unchanged.
                assertThat(seen.node("node1").get().getWireguardPublicKey()).isEqualTo(node1Key.toBase64());
                assertThat(seen.node("node1").get().getWireguardEndpoint()).isEqualTo(node1 + ":" + WG_PORT);
                assertThat(seen.node("node2").get().getWireguardPublicKey()).isEqualTo(node2Key.toBase64());
                assertThat(seen.node("node2").get().getWireguardEndpoint()).isEqualTo(node2 + ":" + WG_PORT);
            }
        }
        assertThat(mesh.log("control-plane")).contains("WireGuard registration refused").contains(
                "which is not within its Node's podCIDRs");
        // On the data path: a valid handshake initiation from node 1's address with a key no node
        // registered is dropped by node 2 and installs nothing.
        double dropped = jit("node2", DROPPED);
        double inbound = jit("node2", INBOUND);
        Key unregistered = RogueNode.sendInitiation(mesh.node("node1").netns(), node2Key, new InetSocketAddress(node2,
                WG_PORT));
        await().atMost(Duration.ofSeconds(10)).until(() -> jit("node2", DROPPED) >= dropped + 1);
        assertThat(jit("node2", INBOUND)).isEqualTo(inbound);
        // Traffic for node 2's pods still goes to node 2, inside WireGuard, to node 2's key only.
        double received = metric(metrics("node2"), "wisp_wireguard_peer_received_bytes_total{peer=\"node1\"}");
        String marker = "WISP-WG-HIJACK-" + Long.toHexString(System.nanoTime());
        try (Capture cap = new Capture("hijack")) {
            for (int i = 0; i < 3; i++) {
                assertThat(udpCall(marker)).isEqualTo(marker);
            }
            assertOnlyWireGuard(cap.stop(6), marker.getBytes(StandardCharsets.US_ASCII), marker.length());
        }
        assertThat(metric(metrics("node2"), "wisp_wireguard_peer_received_bytes_total{peer=\"node1\"}") - received)
                .isGreaterThanOrEqualTo(3.0 * marker.length());
        // Node 2's key only, with node 2's pod CIDR and its own address (the source of what node 2
        // answers through the device to a pod's clear call to its address; see PeerPlan).
        String allowed = wgShow("node1", "allowed-ips");
        assertThat(allowed).startsWith(node2Key.toBase64() + "\t");
        assertThat(allowed.substring(allowed.indexOf('\t') + 1).split(" ")).containsExactlyInAnyOrder(node2 + "/32",
                mesh.node("node2").podCidr());
        assertThat(wgShow("node1", "endpoints")).isEqualTo(node2Key.toBase64() + "\t" + node2 + ":" + WG_PORT);
        for (String n : List.of("node1", "node2")) {
            assertThat(wgShow(n, "peers")).doesNotContain(rogueKey.toBase64()).doesNotContain(unregistered
                    .toBase64());
        }
    }

    static String wgShow(String node, String what) throws Exception {
        return sh("ip", "netns", "exec", mesh.node(node).netns(), "wg", "show", mesh.wireguardInterface(node), what)
                .strip();
    }

    @Test
    @Order(7)
    void withTheDeviceGoneInStrictModeTheEchoFailsInsteadOfCrossingInClear() throws Exception {
        assertThat(udpCall("before")).isEqualTo("before");
        sh("ip", "netns", "exec", mesh.node("node1").netns(), "ip", "link", "del", mesh.wireguardInterface("node1"));
        String marker = "WISP-WG-STRICT-" + Long.toHexString(System.nanoTime());
        try (Capture c = new Capture("strict")) {
            for (int i = 0; i < 3; i++) {
                String answer = udpCall(marker);
                assertThat(answer).as("echo with node 1's device gone").isNotEqualTo(marker);
            }
            List<IpPacket> packets = c.stop(0);
            assertThat(packets).noneMatch(p -> contains(p.whole(), marker.getBytes(StandardCharsets.US_ASCII)));
            assertThat(packets).noneMatch(p -> p.dst().equals(server));
        }
        String ping = sh("ip", "netns", "exec", clientNs, "ping", "-c", "1", "-W", "1", server.getHostAddress());
        assertThat(ping).contains("0 received");
    }
}
