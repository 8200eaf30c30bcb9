package dev.wisp.node.dns;

import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.Fixtures;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The proxy on loopback with a stub upstream: mesh names from the state, the rest relayed, UDP and TCP. */
class DnsProxyTest {
    static final String SERVER = "server.default.svc.cluster.local";
    static final InetAddress VIP = InetAddress.ofLiteral("10.96.0.10");
    UpstreamStub upstream;
    DnsProxy proxy;

    @BeforeEach
    void start() throws Exception {
        WorkloadIndex index = WorkloadIndex.create();
        index.apply(StateUpdates.WORKLOAD, List.of(res(workload("pod-a", "client", "n1", "10.1.0.4"))), List.of());
        index.apply(StateUpdates.SERVICE, List.of(Fixtures.service(SERVER, "10.96.0.10", 80, 8080)), List.of());
        upstream = new UpstreamStub();
        proxy = DnsProxy.start(index, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), upstream.address());
    }

    @AfterEach
    void stop() throws Exception {
        proxy.close();
        upstream.close();
    }

    /** An unconnected socket's sendto(), as a stub resolver does. */
    byte[] udp(byte[] query) throws Exception {
        try (DatagramSocket s = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
            s.setSoTimeout(10_000);
            s.send(new DatagramPacket(query, query.length, proxy.udpAddress()));
            byte[] buf = new byte[2048];
            DatagramPacket p = new DatagramPacket(buf, buf.length);
            s.receive(p);
            assertThat(p.getSocketAddress()).isEqualTo(proxy.udpAddress());
            return Arrays.copyOf(buf, p.getLength());
        }
    }

    byte[] tcp(byte[]... queries) throws Exception {
        try (Socket s = new Socket()) {
            s.connect(proxy.tcpAddress(), 10_000);
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
        assertThat(upstream.udpQueries.get() + upstream.tcpQueries.get()).isZero();
    }

    @Test
    void otherNamesAndSrvAreRelayedToTheUpstreamOverTheSameProtocol() throws Exception {
        byte[] a = udp(DnsWire.query(0x0102, "example.org", DnsMessage.TYPE_A));
        assertThat(DnsMessage.u16(a, 0)).isEqualTo(0x0102);
        assertThat(DnsWire.addresses(a)).containsExactly(UpstreamStub.ADDRESS);
        byte[] srv = tcp(DnsWire.query(3, SERVER, DnsMessage.TYPE_A),
                DnsWire.query(4, "_http._tcp." + SERVER, DnsWire.TYPE_SRV));
        assertThat(DnsMessage.u16(srv, 0)).isEqualTo(4);
        assertThat(DnsWire.addresses(srv)).containsExactly(UpstreamStub.ADDRESS);
        assertThat(upstream.udpQueries.get()).isEqualTo(1);
        assertThat(upstream.tcpQueries.get()).isEqualTo(1);
        assertThat(proxy.forwarded()).isEqualTo(2);
    }

    @Test
    void aMalformedQueryGetsFormErrAndTheProxyKeepsServing() throws Exception {
        byte[] loop = {0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, (byte) 0xC0, 12, 0, 1, 0, 1};
        assertThat(DnsWire.rcode(udp(loop))).isEqualTo(DnsMessage.RCODE_FORMERR);
        assertThat(DnsWire.rcode(tcp(loop))).isEqualTo(DnsMessage.RCODE_FORMERR);
        assertThat(DnsWire.addresses(udp(DnsWire.query(9, SERVER, DnsMessage.TYPE_A)))).containsExactly(VIP);
        assertThat(upstream.udpQueries.get() + upstream.tcpQueries.get()).isZero();
    }
}
