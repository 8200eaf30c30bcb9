package dev.wisp.base;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class UdpTcpPairTest {
    private static final InetAddress LOOPBACK = InetAddress.ofLiteral("127.0.0.1");

    @Test
    void portZeroGivesBothTheSameNumber() throws Exception {
        try (UdpTcpPair p = UdpTcpPair.bind(new InetSocketAddress(LOOPBACK, 0), 8)) {
            assertThat(p.udp().getLocalPort()).isPositive().isEqualTo(p.tcp().getLocalPort());
        }
    }

    @Test
    void anEphemeralPortWhoseTcpTwinIsTakenIsGivenUpForAnother() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, LOOPBACK)) {
            int busy = taken.getLocalPort();
            AtomicInteger binds = new AtomicInteger();
            // The first UDP socket gets the number whose TCP port another socket holds, as the kernel may pick.
            UdpTcpPair.UdpBinder binder = a -> binds.getAndIncrement() == 0
                    ? new DatagramSocket(new InetSocketAddress(LOOPBACK, busy))
                    : new DatagramSocket(a);
            try (UdpTcpPair p = UdpTcpPair.bind(new InetSocketAddress(LOOPBACK, 0), 8, binder)) {
                // At least the one given up; a real ephemeral number's TCP twin may be held too on a busy machine.
                assertThat(binds.get()).isGreaterThanOrEqualTo(2);
                assertThat(p.udp().getLocalPort()).isNotEqualTo(busy).isEqualTo(p.tcp().getLocalPort());
            }
        }
    }

    @Test
    void givesUpAfterEveryAttemptWithPortZero() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, LOOPBACK)) {
            int busy = taken.getLocalPort();
            AtomicInteger binds = new AtomicInteger();
            UdpTcpPair.UdpBinder always = a -> {
                binds.incrementAndGet();
                return new DatagramSocket(new InetSocketAddress(LOOPBACK, busy));
            };
            assertThatThrownBy(() -> UdpTcpPair.bind(new InetSocketAddress(LOOPBACK, 0), 8, always))
                    .isInstanceOf(IOException.class).hasMessageContaining("TCP port").hasMessageContaining(
                            ":" + busy + " is not free");
            assertThat(binds).hasValue(UdpTcpPair.EPHEMERAL_ATTEMPTS);
        }
    }

    @Test
    void aFixedPortWhoseTcpIsTakenIsRefusedAtOnce() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, LOOPBACK)) {
            InetSocketAddress at = new InetSocketAddress(LOOPBACK, taken.getLocalPort());
            assertThatThrownBy(() -> UdpTcpPair.bind(at, 8)).isInstanceOf(IOException.class).hasMessageContaining(
                    "TCP port " + at + " is not free");
        }
    }
}
