package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The batched UDP socket on loopback: bound through Sockets' calls, it receives what a JDK socket sends, and answers. */
class UdpBatchSocketTest {
    @Test
    void bindsAnEphemeralPortAndCarriesDatagramsBothWays() throws Exception {
        UdpBatchSocket.Batch batch = new UdpBatchSocket.Batch();
        try (UdpBatchSocket s = UdpBatchSocket.bind(0, 1 << 20);
                DatagramSocket peer = new DatagramSocket(0,
                        InetAddress.ofLiteral("127.0.0.1"))) {
            assertThat(s.port()).isPositive();
            byte[] hello = "hello".getBytes(StandardCharsets.US_ASCII);
            peer.send(new DatagramPacket(hello, hello.length, new InetSocketAddress("127.0.0.1", s.port())));
            int n = 0;
            for (int tries = 0; n == 0 && tries < 50; tries++) { // each receive waits at most 200 ms
                n = s.receive(batch);
            }
            assertThat(n).isEqualTo(1);
            byte[] got = new byte[batch.length(0)];
            batch.copyOut(0, got, 0, got.length);
            assertThat(got).isEqualTo(hello);
            assertThat(batch.source(0).getPort()).isEqualTo(peer.getLocalPort());

            UdpBatchSocket.Batch out = new UdpBatchSocket.Batch();
            try {
                assertThat(out.add(batch.source(0), got, 0, got.length)).isTrue();
                assertThat(s.send(out)).isEqualTo(1);
                DatagramPacket reply = new DatagramPacket(new byte[16], 16);
                peer.setSoTimeout(10_000);
                peer.receive(reply);
                assertThat(new String(reply.getData(), 0, reply.getLength(), StandardCharsets.US_ASCII))
                        .isEqualTo("hello");
            } finally {
                out.free();
            }
        } finally {
            batch.free();
        }
    }
}
