package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.bpf.capture.Capture;
import dev.wisp.bpf.capture.CaptureConfig;
import dev.wisp.bpf.capture.FlowEvent;
import dev.wisp.bpf.capture.PodRef;
import dev.wisp.local.Sh;
import dev.wisp.base.Closing;
import dev.wisp.base.IpText;
import dev.wisp.testing.PodServer;
import dev.wisp.testing.Prerequisites;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Capture on the real kernel: pods A, B, C of a {@link CaptureLab} (one node of a local cluster
 * without agents); the node agent is {@link StandInAgent} in the node namespace, and this JVM (in
 * the node's cgroup) opens the capture; the application is {@link PodServer} in pod B; clients
 * are {@code curl} and {@link PodProbe} run inside pod A or C. A is a member of the mesh, C is not.
 */
class CaptureEndToEndTest {
    private static final String CLUSTER = "l4capt";
    private static final int A = 0;
    private static final int B = 1;
    private static final int C = 2;
    private static final Pattern ATTACH_TYPE = Pattern.compile("\"attach_type\":\\s*\"([a-z0-9_]+)\"");

    private static CaptureLab lab;
    private static StandInAgent relay;
    private static StandInAgent relay6;
    private static PodServer server;
    private Path pinRoot;
    private final List<Capture> opened = new ArrayList<>();

    @BeforeAll
    static void buildLab() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "curl", "bpftool", "setpriv", "python3");
        lab = CaptureLab.up(CLUSTER, 66);
        relay = CaptureLab.in(lab.nodeNetns(), () -> StandInAgent.relay(new InetSocketAddress(15001), 0));
        relay6 = CaptureLab.in(lab.nodeNetns(), () -> StandInAgent.relay(new InetSocketAddress(lab.nodeAddress6(),
                15001), 0));
        server = CaptureLab.in(lab.netns(B), () -> PodServer.start("B", new InetSocketAddress(lab.podAddress(B), 8080),
                new InetSocketAddress(lab.podAddress6(B), 8080)));
    }

    @AfterAll
    static void tearDownLab() throws Exception {
        try {
            Closing.inOrder(relay, relay6, server);
        } finally {
            if (lab != null) {
                lab.close();
            }
        }
    }

    @BeforeEach
    void freshPins() {
        // Below the cluster's pin directory: the cluster's teardown and leftover scan cover it.
        pinRoot = lab.pinRoot("t" + System.nanoTime());
    }

    @AfterEach
    void uninstall() throws Exception {
        for (Capture c : opened) {
            c.close();
        }
        // A fresh instance removes whatever the test left pinned (also after a failure).
        Capture.open(config()).uninstall();
        assertThat(pinRoot).doesNotExist();
        for (int i = 0; i < 3; i++) {
            assertThat(attachTypes(lab.cgroup(i))).isEmpty();
        }
    }

    private CaptureConfig config() throws Exception {
        return config(15001);
    }

    private CaptureConfig config(int outboundPort) throws Exception {
        return new CaptureConfig(pinRoot, lab.agentCgroup, new InetSocketAddress(lab.nodeAddress(), outboundPort),
                new InetSocketAddress(lab.nodeAddress6(), outboundPort), 15006, 15008, CaptureConfig.MESH_PORTS,
                List.of(
                        lab.nodeAddress()));
    }

    private Capture open() throws Exception {
        return open(15001);
    }

    private Capture open(int outboundPort) throws Exception {
        Capture c = Capture.open(config(outboundPort));
        opened.add(c);
        return c;
    }

    private String url(int pod) {
        return "http://" + lab.podIp(pod) + ":8080/";
    }

    @Test
    void curlInAMemberPodIsRedirectedToTheAgentWhichFindsTheOriginalDestination() throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(A, false));
        int before = relay.accepted.size();

        Sh.Result r = lab.inPod(A, List.of("curl", "-sS", "--noproxy", "*", "-m", "10", url(B)), 20);

        // B saw the relay (node side of B's veth), not pod A: the connection went through the agent.
        assertThat(r.out()).as(r.err() + relay.failures)
                .isEqualTo("hello from B; you are " + lab.nodeIp() + "\n");
        assertThat(relay.accepted).hasSize(before + 1);
        StandInAgent.Accepted seen = relay.accepted.get(before);
        assertThat(seen.originalDst()).isEqualTo(new InetSocketAddress(lab.podAddress(B), 8080));
        assertThat(seen.remote().getAddress()).isEqualTo(lab.podAddress(A));
        assertThat(seen.local()).isEqualTo(new InetSocketAddress(lab.nodeAddress(), 15001));
    }

    @Test
    void getpeernameShowsTheOriginalPeerAndFlowEventsCarryAddressesAndBytes() throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(A, false));
        List<FlowEvent> events = new CopyOnWriteArrayList<>();
        try (AutoCloseable sub = capture.subscribe(events::add)) {
            Sh.Result r = lab.inPod(A, probe("connect", lab.podIp(B), "8080", "100"), 60);

            Map<String, String> out = keyValues(r.out());
            assertThat(out).as(r.err()).containsEntry("peer", "/" + lab.podIp(B) + ":8080");
            assertThat(out.get("body")).isEqualTo("hello from B; you are " + lab.nodeIp());
            long received = Long.parseLong(out.get("received"));
            InetSocketAddress original = new InetSocketAddress(lab.podAddress(B), 8080);
            InetSocketAddress agent = new InetSocketAddress(lab.nodeAddress(), 15001);

            await().atMost(Duration.ofSeconds(10)).until(() -> events.stream()
                    .anyMatch(e -> e.type() == FlowEvent.Type.CLOSED && original.equals(e.originalDestination())));
            FlowEvent opened = events.stream()
                    .filter(e -> e.type() == FlowEvent.Type.OPENED && original.equals(e.originalDestination()))
                    .findFirst().orElseThrow();
            FlowEvent closed = events.stream()
                    .filter(e -> e.type() == FlowEvent.Type.CLOSED && e.cookie() == opened.cookie()).findFirst()
                    .orElseThrow();
            assertThat(opened.redirected()).isTrue();
            assertThat(opened.cgroupId()).isEqualTo(lab.cgroupId(A));
            assertThat(opened.source().getAddress()).isEqualTo(lab.podAddress(A));
            assertThat(opened.destination()).isEqualTo(agent);
            assertThat(closed.cgroupId()).isEqualTo(lab.cgroupId(A));
            assertThat(closed.source()).isEqualTo(opened.source());
            assertThat(closed.bytesSent()).isEqualTo(100);
            assertThat(closed.bytesReceived()).isEqualTo(received);
            // The agent's own lookup (what its 15001 resolver calls) finds nothing once the flow closed.
            assertThat(capture.originalDestination(agent, opened.source())).isEmpty();
        }
    }

    @Test
    void aJdkDualStackSocketConnectingToAnIpv4AddressIsCapturedToo() throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(A, false));
        int before = relay.accepted.size();

        Sh.Result r = lab.inPod(A, probe("jdk", lab.podIp(B), "8080"), 60);

        assertThat(keyValues(r.out())).as(r.err()).containsEntry("body",
                "hello from B; you are " + lab.nodeIp());
        assertThat(relay.accepted).hasSize(before + 1);
        assertThat(relay.accepted.get(before).originalDst()).isEqualTo(new InetSocketAddress(lab.podAddress(B), 8080));
    }

    @Test
    void aDualStackAgentListenerGetsTheOriginalDestinationOfIpv4Connections() throws Exception {
        Capture capture = open(15003);
        capture.enroll(lab.podRef(A, false));
        // Netty and the JDK listen dual-stack ([::]) by default: IPv4 clients arrive IPv4-mapped.
        try (StandInAgent dualStack = CaptureLab.in(lab.nodeNetns(),
                () -> StandInAgent.relay(new InetSocketAddress(InetAddress.getByName("::"), 15003), 0))) {
            Sh.Result r = lab.inPod(A, List.of("curl", "-sS", "-m", "10", url(B)), 20);

            assertThat(r.out()).as(r.err() + dualStack.failures)
                    .isEqualTo("hello from B; you are " + lab.nodeIp() + "\n");
            assertThat(dualStack.accepted.getFirst().originalDst())
                    .isEqualTo(new InetSocketAddress(lab.podAddress(B), 8080));
        }
    }

    @Test
    void ipv6ConnectsAreRedirectedAndAnsweredLikeIpv4() throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(A, false));
        int before = relay6.accepted.size();

        Sh.Result r = lab.inPod(A,
                List.of("curl", "-sS", "-g", "-m", "10", "http://[" + lab.podIp6(B) + "]:8080/"), 20);

        String nodeB6 = lab.nodeAddress6().getHostAddress();
        assertThat(r.out()).as(r.err() + relay6.failures).isEqualTo("hello from B; you are " + nodeB6 + "\n");
        StandInAgent.Accepted seen = relay6.accepted.get(before);
        assertThat(seen.originalDst()).isEqualTo(new InetSocketAddress(InetAddress.getByName(lab.podIp6(B)), 8080));
        assertThat(seen.remote().getAddress()).isEqualTo(InetAddress.getByName(lab.podIp6(A)));

        Map<String, String> out = keyValues(lab.inPod(A, probe("connect", lab.podIp6(B), "8080", "64"), 60).out());
        assertThat(out.get("peer")).isEqualTo(new InetSocketAddress(InetAddress.getByName(lab.podIp6(B)), 8080)
                .toString());
    }

    @Test
    void aThrowingSubscriberNeitherStopsTheStreamNorStarvesTheOthers() throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(A, false));
        List<FlowEvent> seenByThrower = new CopyOnWriteArrayList<>();
        List<FlowEvent> seen = new CopyOnWriteArrayList<>();
        try (AutoCloseable thrower = capture.subscribe(e -> {
            seenByThrower.add(e);
            throw new IllegalStateException("subscriber bug");
        }); AutoCloseable recorder = capture.subscribe(seen::add)) {
            for (int i = 0; i < 2; i++) {
                assertThat(lab.inPod(A, List.of("curl", "-sS", "-m", "10", url(B)), 20).out())
                        .startsWith("hello from B");
            }
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> seen.stream().filter(e -> e.type() == FlowEvent.Type.CLOSED).count() == 2);
            assertThat(seenByThrower).hasSameSizeAs(seen);
        }
    }

    @Test
    void theAgentResolvesTheOriginalDestinationFromTheAcceptedSocketsAddresses() throws Exception {
        Capture capture = open(15002);
        capture.enroll(lab.podRef(A, false));
        InetSocketAddress original = new InetSocketAddress(lab.podAddress(B), 8080);
        List<InetSocketAddress> resolved = new CopyOnWriteArrayList<>();
        try (StandInAgent agent = CaptureLab.in(lab.nodeNetns(),
                () -> StandInAgent.answering(new InetSocketAddress(15002), seen -> {
                    try {
                        capture.originalDestination(seen.local(), seen.remote()).ifPresent(resolved::add);
                    } catch (Exception e) {
                        return "lookup failed: " + e.getMessage();
                    }
                    return "HTTP/1.0 200 OK\r\n\r\nresolved\n";
                }))) {
            Sh.Result r = lab.inPod(A, List.of("curl", "-sS", "-m", "10", url(B)), 20);

            assertThat(r.out()).as(r.err()).isEqualTo("resolved\n");
            assertThat(resolved).containsExactly(original);
            assertThat(agent.accepted.getFirst().originalDst()).isEqualTo(original);
        }
    }

    @Test
    void inboundPlaintextToAMemberPodIsSteeredToTheInboundListenerAndHboneToTheHboneListener() throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(B, true));
        String podB = lab.netns(B);
        // The agent's listeners live in pod B's network namespace (ztunnel's in-pod mode).
        try (StandInAgent inbound = CaptureLab.in(podB, () -> StandInAgent.answering(new InetSocketAddress(15006),
                seen -> "HTTP/1.0 200 OK\r\n\r\ninbound saw " + seen.local() + "\n"));
                StandInAgent hbone = CaptureLab.in(podB, () -> StandInAgent.answering(new InetSocketAddress(15008),
                        seen -> "HTTP/1.0 200 OK\r\n\r\nhbone saw " + seen.local() + "\n"))) {
            capture.setInboundListener(lab.podAddress(B), inbound.fd());
            capture.setHboneListener(lab.podAddress(B), hbone.fd());

            Sh.Result plain = lab.inPod(C, List.of("curl", "-sS", "-m", "10", url(B)), 20);
            assertThat(plain.out()).as(plain.err()).isEqualTo("inbound saw /" + lab.podIp(B) + ":8080\n");
            assertThat(inbound.accepted.getFirst().remote().getAddress()).isEqualTo(lab.podAddress(C));

            Sh.Result tunnel = lab.inPod(C,
                    List.of("curl", "-sS", "-m", "10", "http://" + lab.podIp(B) + ":15008/"), 20);
            assertThat(tunnel.out()).as(tunnel.err()).isEqualTo("hbone saw /" + lab.podIp(B) + ":15008\n");

            // Connections from a bypass (node) address, or from the pod's own address (the agent's
            // in-pod connection to the application), reach the application directly.
            String fromNode = CaptureLab.in(lab.nodeNetns(),
                    () -> Sh.tryRun(Duration.ofSeconds(20), List.of("curl", "-sS", "-m", "10", url(B))).out());
            assertThat(fromNode).isEqualTo("hello from B; you are " + lab.nodeIp() + "\n");
            String fromPod = Sh
                    .tryRun(Duration.ofSeconds(20),
                            List.of("ip", "netns", "exec", podB, "curl", "-sS", "-m", "10", url(B)))
                    .out();
            assertThat(fromPod).isEqualTo("hello from B; you are " + lab.podIp(B) + "\n");
            assertThat(inbound.accepted).hasSize(1);

            // Removing the pod stops inbound steering too.
            capture.remove(podB);
            Sh.Result after = lab.inPod(C, List.of("curl", "-sS", "-m", "10", url(B)), 20);
            assertThat(after.out()).as(after.err()).isEqualTo("hello from B; you are " + lab.podIp(C) + "\n");
        }
    }

    @Test
    void memberPodsCannotBindTheMeshPorts() throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(A, false));

        assertThat(lab.inPod(A, probe("bind", "15008"), 60).out())
                .startsWith("error=bind(/0.0.0.0:15008) failed: EPERM");
        assertThat(lab.inPod(A, probe("bind", "18080"), 60).out()).isEqualTo("bound 18080\n");
        assertThat(lab.inPod(C, probe("bind", "15008"), 60).out()).isEqualTo("bound 15008\n");
        // UDP too: the agent's DNS listener is 127.0.0.1:15053 in the pod's namespace, and a pod's
        // socket there (even beside it, with SO_REUSEPORT) would take its own DNS away.
        assertThat(udpBind(A, "127.0.0.1", 15053)).isEqualTo("errno 1\n");
        assertThat(udpBind(A, "0.0.0.0", 15053)).isEqualTo("errno 1\n");
        assertThat(udpBind(A, "127.0.0.1", 15054)).isEqualTo("bound\n");
        assertThat(udpBind(C, "127.0.0.1", 15053)).isEqualTo("bound\n");
    }

    @Test
    void theDnsRedirectAKilledAgentLeftIsOffWhenCaptureOpensAgain() throws Exception {
        Capture first = open();
        first.enroll(lab.podRef(A, false));
        assertThat(udpSourceTowards(A, lab.podIp(B))).isEqualTo(lab.podIp(A));
        first.redirectDns(15053);
        assertThat(udpSourceTowards(A, lab.podIp(B))).as("redirected to the in-pod DNS listener").isEqualTo(
                "127.0.0.1");
        first.close(); // as if killed: nothing turned the pinned redirect off

        assertThat(udpSourceTowards(A, lab.podIp(B))).as("still on with no agent").isEqualTo("127.0.0.1");
        Capture second = open();
        assertThat(udpSourceTowards(A, lab.podIp(B))).as("off once an agent opens capture").isEqualTo(lab.podIp(
                A));
        second.redirectDns(15053);
        assertThat(udpSourceTowards(A, lab.podIp(B))).isEqualTo("127.0.0.1");
    }

    @Test
    void ipv6DnsAndIpv4DnsThroughADualStackSocketGoToTheInPodLoopbackListenersAndReadAsFromTheServer()
            throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(A, false));
        capture.redirectDns(15053);
        // The agent's two in-pod listeners (this JVM is not in the pod's cgroup, so the bind hook
        // lets it bind the DNS port); each answers with the address the datagram came from.
        try (UdpEcho v6 = CaptureLab.in(lab.netns(A), () -> new UdpEcho(InetAddress.ofLiteral("::1")));
                UdpEcho v4 = CaptureLab.in(lab.netns(A), () -> new UdpEcho(InetAddress.ofLiteral("127.0.0.1")))) {
            String server6 = IpText.of(lab.podAddress6(B));
            assertThat(udp6Dns(A, server6)).as("an IPv6 server: sendmsg6/recvmsg6, connect6/getpeername6")
                    .containsExactly("sendto " + server6 + " 53 from ::1", "peer " + server6,
                            "connected " + server6 + " 53 from ::1");
            String mapped = "::ffff:" + lab.podIp(B);
            assertThat(udp6Dns(A, mapped)).as("an IPv4 server through a dual-stack socket")
                    .containsExactly("sendto " + mapped + " 53 from 127.0.0.1", "peer " + mapped,
                            "connected " + mapped + " 53 from 127.0.0.1");
            // A non-member's DNS goes where it was sent (nobody answers there).
            assertThat(udp6Dns(C, server6)).containsExactly("timeout");
        }
    }

    /**
     * Pod {@code pod}'s AF_INET6 UDP socket sends to {@code server}:53 with sendto(), then another
     * connects there and sends: what each answer's source and the echo say.
     */
    private static List<String> udp6Dns(int pod, String server) {
        Sh.Result r = lab.inPod(pod, List.of("python3", "-c", """
                import socket, sys
                server = sys.argv[1]
                try:
                    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                    s.settimeout(3)
                    s.sendto(b"q", (server, 53))
                    d, src = s.recvfrom(100)
                    print("sendto", src[0], src[1], d.decode())
                    c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                    c.settimeout(3)
                    c.connect((server, 53))
                    print("peer", c.getpeername()[0])
                    c.send(b"q")
                    d, src = c.recvfrom(100)
                    print("connected", src[0], src[1], d.decode())
                except socket.timeout:
                    print("timeout")
                """, server), 30);
        return r.out().lines().toList();
    }

    /** A UDP socket on {@code address}:15053 answering each datagram with "from <its source address>". */
    private static final class UdpEcho implements AutoCloseable {
        private final java.net.DatagramSocket socket;

        UdpEcho(InetAddress address) throws java.io.IOException {
            socket = new java.net.DatagramSocket(new InetSocketAddress(address, 15053));
            Thread.ofVirtual().start(() -> {
                byte[] buf = new byte[512];
                while (!socket.isClosed()) {
                    try {
                        java.net.DatagramPacket p = new java.net.DatagramPacket(buf, buf.length);
                        socket.receive(p);
                        byte[] a = ("from " + IpText.of(p.getAddress())).getBytes(
                                java.nio.charset.StandardCharsets.US_ASCII);
                        socket.send(new java.net.DatagramPacket(a, a.length, p.getSocketAddress()));
                    } catch (java.io.IOException e) {
                        // closed
                    }
                }
            });
        }

        @Override
        public void close() {
            socket.close();
        }
    }

    /** The local address a UDP socket of pod {@code pod} gets when it connects to {@code ip}:53. */
    private static String udpSourceTowards(int pod, String ip) {
        Sh.Result r = lab.inPod(pod, List.of("python3", "-c", "import socket\n"
                + "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" + "s.connect(('" + ip + "', 53))\n"
                + "print(s.getsockname()[0])"), 20);
        return r.out().strip() + r.err();
    }

    /** Binds UDP {@code ip:port} in pod {@code pod} with SO_REUSEPORT: "bound" or "errno N". */
    private static String udpBind(int pod, String ip, int port) {
        Sh.Result r = lab.inPod(pod, List.of("python3", "-c", "import socket\n"
                + "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                + "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n" + "try:\n" + "    s.bind(('" + ip
                + "', " + port + "))\n" + "    print('bound')\n" + "except OSError as e:\n"
                + "    print('errno', e.errno)"), 20);
        return r.out() + r.err();
    }

    @Test
    void removingThePodRestoresDirectConnections() throws Exception {
        Capture capture = open();
        capture.enroll(lab.podRef(A, false));
        assertThat(lab.inPod(A, List.of("curl", "-sS", "-m", "10", url(B)), 20).out())
                .isEqualTo("hello from B; you are " + lab.nodeIp() + "\n");

        assertThat(capture.remove(lab.netns(A))).isTrue();

        assertThat(attachTypes(lab.cgroup(A))).isEmpty();
        assertThat(capture.enrolled()).isEmpty();
        int before = relay.accepted.size();
        assertThat(lab.inPod(A, List.of("curl", "-sS", "-m", "10", url(B)), 20).out())
                .isEqualTo("hello from B; you are " + lab.podIp(A) + "\n");
        assertThat(relay.accepted).hasSize(before);
        assertThat(capture.remove(lab.netns(A))).isFalse();
    }

    @Test
    void reopeningAfterARestartLeavesExactlyOneSetOfProgramsAndCaptureKeepsWorking() throws Exception {
        Capture first = open();
        first.enroll(lab.podRef(A, true));
        List<String> once = attachTypes(lab.cgroup(A));
        assertThat(once).containsExactlyInAnyOrder("cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_sock_ops",
                "cgroup_inet4_getpeername", "cgroup_inet6_getpeername", "cgroup_inet4_bind", "cgroup_inet6_bind",
                "cgroup_udp4_sendmsg", "cgroup_udp4_recvmsg", "cgroup_udp6_sendmsg", "cgroup_udp6_recvmsg");
        assertThat(attachTypes(lab.agentCgroup)).containsExactly("cgroup_getsockopt");
        first.close();

        // The "restarted agent": a new instance over the same pins, enrolling the same pod again.
        Capture second = open();
        assertThat(second.enrolled()).containsExactly(lab.netns(A));
        second.enroll(lab.podRef(A, true));

        assertThat(attachTypes(lab.cgroup(A))).containsExactlyInAnyOrderElementsOf(once);
        assertThat(attachTypes(lab.agentCgroup)).containsExactly("cgroup_getsockopt");
        assertThat(skLookupLinks(lab.netns(A))).isEqualTo(1);
        assertThat(lab.inPod(A, List.of("curl", "-sS", "-m", "10", url(B)), 20).out())
                .isEqualTo("hello from B; you are " + lab.nodeIp() + "\n");

        // An agent restarted in another cgroup (a new container) takes the getsockopt hook along.
        Path newAgentCgroup = java.nio.file.Files.createDirectories(lab.agentCgroup.resolveSibling("agent2"));
        try {
            Capture third = Capture.open(new CaptureConfig(pinRoot, newAgentCgroup,
                    new InetSocketAddress(lab.nodeAddress(), 15001), null, 15006, 15008, CaptureConfig.MESH_PORTS,
                    List.of()));
            opened.add(third);
            assertThat(attachTypes(newAgentCgroup)).containsExactly("cgroup_getsockopt");
            assertThat(attachTypes(lab.agentCgroup)).isEmpty();
            assertThat(attachTypes(lab.cgroup(A))).containsExactlyInAnyOrderElementsOf(once);
        } finally {
            uninstall();
            opened.clear();
            java.nio.file.Files.delete(newAgentCgroup);
        }
    }

    @Test
    void aPodThatWentAwayWhileTheAgentWasDownIsDroppedAtOpen() throws Exception {
        Path gone = java.nio.file.Files.createDirectories(lab.agentCgroup.resolveSibling("gone"));
        Capture first = open();
        first.enroll(new PodRef("gone", gone, null, List.of(InetAddress.getByName("10.254.0.9"))));
        first.close();
        java.nio.file.Files.delete(gone);

        // The kernel detaches a dead cgroup's links asynchronously, soon after rmdir.
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            Capture reopened = open();
            reopened.close();
            return reopened.enrolled().isEmpty();
        });
        assertThat(pinRoot.resolve("pods/gone")).doesNotExist();
        Capture second = open();
        second.enroll(lab.podRef(A, false));
        assertThat(lab.inPod(A, List.of("curl", "-sS", "-m", "10", url(B)), 20).out())
                .isEqualTo("hello from B; you are " + lab.nodeIp() + "\n");
    }

    @Test
    void aRestartedAgentProcessReadoptsThePinnedCaptureWithoutAttachingTwice() throws Exception {
        List<String> run = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                AgentRunProbe.class.getName(), pinRoot.toString(), lab.agentCgroup.toString(), lab.nodeIp(), "15001",
                lab.netns(A), lab.cgroup(A).toString(), lab.netnsPath(A).toString(), lab.podIp(A)));

        Sh.Result first = Sh.tryRun(Duration.ofSeconds(60), run);
        Sh.Result second = Sh.tryRun(Duration.ofSeconds(60), run);

        assertThat(first.out()).as(first.err()).contains("enrolled-at-start=[]\n");
        assertThat(second.out()).as(second.err()).contains("enrolled-at-start=[" + lab.netns(A) + "]\n");
        assertThat(attachTypes(lab.cgroup(A))).hasSize(11).doesNotHaveDuplicates();
        assertThat(attachTypes(lab.agentCgroup)).containsExactly("cgroup_getsockopt");
        assertThat(skLookupLinks(lab.netns(A))).isEqualTo(1);
        // Both agent processes are gone: the pinned programs keep capturing on their own.
        assertThat(lab.inPod(A, List.of("curl", "-sS", "-m", "10", url(B)), 20).out())
                .isEqualTo("hello from B; you are " + lab.nodeIp() + "\n");
    }

    private static List<String> probe(String... args) {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                PodProbe.class.getName()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    private static Map<String, String> keyValues(String stdout) {
        Map<String, String> out = new TreeMap<>();
        for (String line : stdout.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                out.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return out;
    }

    /** sk_lookup links attached to the named network namespace, per {@code bpftool link show}. */
    private static long skLookupLinks(String netns) throws Exception {
        Object ino = java.nio.file.Files.getAttribute(Path.of("/run/netns", netns), "unix:ino");
        return java.util.Arrays.stream(Sh.run("bpftool", "-j", "link", "show").split("\\}"))
                .filter(link -> link.contains("\"sk_lookup\"")
                        && Pattern.compile("\"netns_ino\":\\s*" + ino + "\\b").matcher(link).find())
                .count();
    }

    static List<String> attachTypes(Path cgroup) throws Exception {
        List<String> types = new ArrayList<>();
        Matcher m = ATTACH_TYPE.matcher(Sh.run("bpftool", "-j", "cgroup", "show", cgroup.toString()));
        while (m.find()) {
            types.add(m.group(1));
        }
        return types;
    }
}
