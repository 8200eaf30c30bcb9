package dev.wisp.node.dns;

import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.wisp.node.Fixtures;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.testing.StubResolver;
import dev.wisp.node.state.WorkloadIndex;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The proxy on loopback with a stub upstream: mesh names from the state, the rest relayed, UDP and
 * TCP; and only to the listener's clients.
 */
class DnsProxyTest {
    static final String SERVER = "server.default.svc.cluster.local";
    static final InetAddress VIP = InetAddress.ofLiteral("10.96.0.10");
    StubResolver upstream;
    DnsProxy proxy;
    DnsListener listener;

    @BeforeEach
    void start() throws Exception {
        WorkloadIndex index = WorkloadIndex.create();
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("pod-a", "client", "n1", "10.1.0.4"))), List.of());
        index.apply(StateUpdates.SERVICE, List.of(Fixtures.service(SERVER, "10.96.0.10", 80, 8080)), List.of());
        upstream = new StubResolver(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        proxy = DnsProxy.create(index, upstream.address());
        listener = proxy.listen(new InetSocketAddress(InetAddress.ofLiteral("127.0.0.1"), 0),
                DnsProxy.LOOPBACK_CLIENTS);
    }

    @AfterEach
    void stop() throws Exception {
        proxy.close();
        upstream.close();
    }

    /** An unconnected socket's sendto(), as a stub resolver does. */
    byte[] udp(byte[] query) throws Exception {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(InetAddress.ofLiteral("127.0.0.1"), 0))) {
            s.setSoTimeout(10_000);
            s.send(new DatagramPacket(query, query.length, listener.udpAddress()));
            byte[] buf = new byte[2048];
            DatagramPacket p = new DatagramPacket(buf, buf.length);
            s.receive(p);
            assertThat(p.getSocketAddress()).isEqualTo(listener.udpAddress());
            return Arrays.copyOf(buf, p.getLength());
        }
    }

    byte[] tcp(byte[]... queries) throws Exception {
        try (Socket s = new Socket()) {
            s.connect(listener.tcpAddress(), 10_000);
            s.setSoTimeout(10_000);
            DataOutputStream out = new DataOutputStream(s.getOutputStream());
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] last = null;
            for (byte[] q : queries) {
                out.writeShort(q.length);
                out.write(q);
                out.flush();
                last = new byte[in.readUnsignedShort()];
                in.readFully(last);
            }
            return last;
        }
    }

    @Test
    void aMeshNameIsAnsweredFromTheStateOverUdpAndTcpWithoutAskingUpstream() throws Exception {
        assertThat(DnsWire.addresses(udp(DnsWire.query(7, SERVER, DnsMessage.TYPE_A)))).containsExactly(VIP);
        assertThat(DnsWire.addresses(tcp(DnsWire.query(8, SERVER, DnsMessage.TYPE_A)))).containsExactly(VIP);
        assertThat(proxy.answered()).isEqualTo(2);
        assertThat(upstream.count("udp") + upstream.count("tcp")).isZero();
    }

    @Test
    void otherNamesAndSrvAreRelayedToTheUpstreamOverTheSameProtocol() throws Exception {
        byte[] a = udp(DnsWire.query(0x0102, "example.org", DnsMessage.TYPE_A));
        assertThat(DnsMessage.u16(a, 0)).isEqualTo(0x0102);
        assertThat(DnsWire.addresses(a)).containsExactly(StubResolver.ADDRESS);
        byte[] srv = tcp(DnsWire.query(3, SERVER, DnsMessage.TYPE_A),
                DnsWire.query(4, "_http._tcp." + SERVER, DnsWire.TYPE_SRV));
        assertThat(DnsMessage.u16(srv, 0)).isEqualTo(4);
        assertThat(upstream.asked).containsExactly("udp example.org", "tcp _http._tcp." + SERVER);
        assertThat(upstream.count("udp")).isEqualTo(1);
        assertThat(upstream.count("tcp")).isEqualTo(1);
        assertThat(proxy.forwarded()).isEqualTo(2);
    }

    @Test
    void aMalformedQueryGetsFormErrAndTheProxyKeepsServing() throws Exception {
        byte[] loop = {0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, (byte) 0xC0, 12, 0, 1, 0, 1};
        assertThat(DnsWire.rcode(udp(loop))).isEqualTo(DnsMessage.RCODE_FORMERR);
        assertThat(DnsWire.rcode(tcp(loop))).isEqualTo(DnsMessage.RCODE_FORMERR);
        assertThat(DnsWire.addresses(udp(DnsWire.query(9, SERVER, DnsMessage.TYPE_A)))).containsExactly(VIP);
        assertThat(upstream.count("udp") + upstream.count("tcp")).isZero();
    }

    /**
     * The spoof test: 127.0.0.2 is a loopback address but not one of the listener's clients, standing
     * for any source the agent must not serve. Its queries, a mesh name and a relayable one, over
     * UDP and TCP, get nothing and nothing reaches the upstream.
     */
    @Test
    void aQueryFromOutsideTheListenersClientsGetsNothingAndNothingIsRelayed() throws Exception {
        InetSocketAddress stranger = new InetSocketAddress(InetAddress.ofLiteral("127.0.0.2"), 0);
        try (DatagramSocket s = new DatagramSocket(stranger)) {
            for (byte[] q : List.of(DnsWire.query(11, "example.org", DnsMessage.TYPE_A),
                    DnsWire.query(12, SERVER, DnsMessage.TYPE_A))) {
                s.send(new DatagramPacket(q, q.length, listener.udpAddress()));
            }
            await().atMost(Duration.ofSeconds(10)).until(() -> proxy.refused() == 2);
            s.setSoTimeout(200);
            assertThatThrownBy(() -> s.receive(new DatagramPacket(new byte[2048], 2048)))
                    .isInstanceOf(SocketTimeoutException.class);
        }
        try (Socket c = new Socket()) {
            c.bind(stranger);
            c.connect(listener.tcpAddress(), 10_000);
            c.setSoTimeout(10_000);
            byte[] q = DnsWire.query(13, "example.org", DnsMessage.TYPE_A);
            int first;
            try {
                DataOutputStream out = new DataOutputStream(c.getOutputStream());
                out.writeShort(q.length);
                out.write(q);
                out.flush();
                first = c.getInputStream().read();
            } catch (SocketException reset) {
                first = -1; // closed before our bytes arrived: a reset or a broken pipe, equally unanswered
            }
            assertThat(first).as("the proxy closes a stranger's connection unanswered").isEqualTo(-1);
        }
        assertThat(proxy.refused()).isEqualTo(3);
        assertThat(proxy.answered() + proxy.forwarded()).isZero();
        assertThat(upstream.count("udp") + upstream.count("tcp")).isZero();
        // The same query from a client is relayed: the refusal was the source, not the query.
        assertThat(DnsWire.addresses(udp(DnsWire.query(14, "example.org", DnsMessage.TYPE_A))))
                .containsExactly(StubResolver.ADDRESS);
    }
}
