package dev.wisp.base;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.ServerSocket;

/**
 * A UDP socket and a TCP listener on one address and port, as DNS serves both. With port 0 both
 * take the same ephemeral number: the UDP socket picks one, and when another socket already holds
 * that number for TCP the pair is given up and another tried ({@link #EPHEMERAL_ATTEMPTS} in all),
 * because the kernel picks UDP ports without looking at TCP's.
 */
public record UdpTcpPair(DatagramSocket udp, ServerSocket tcp) implements AutoCloseable {
    /** Ephemeral UDP ports tried when {@code address} has port 0 and their TCP twins are taken. */
    public static final int EPHEMERAL_ATTEMPTS = 16;

    /** How a UDP socket is bound (tests choose the ephemeral port). */
    public interface UdpBinder {
        DatagramSocket bind(InetSocketAddress address) throws IOException;
    }

    public UdpTcpPair {
        requireNonNull(udp, "udp");
        requireNonNull(tcp, "tcp");
    }

    /** Binds both on {@code address} (port 0: one free number for both), TCP with {@code backlog}. */
    public static UdpTcpPair bind(InetSocketAddress address, int backlog) throws IOException {
        return bind(address, backlog, DatagramSocket::new);
    }

    /**
     * As {@link #bind(InetSocketAddress, int)}, binding UDP through {@code binder}.
     *
     * @throws IOException naming the TCP address when it is not free (after every attempt with port 0)
     */
    public static UdpTcpPair bind(InetSocketAddress address, int backlog, UdpBinder binder) throws IOException {
        requireNonNull(address, "address");
        requireNonNull(binder, "binder");
        for (int attempt = 1;; attempt++) {
            DatagramSocket udp = binder.bind(address);
            InetSocketAddress tcpAddress = address.getPort() == 0
                    ? new InetSocketAddress(address.getAddress(), udp.getLocalPort())
                    : address;
            ServerSocket tcp = new ServerSocket();
            try {
                tcp.setReuseAddress(true);
                tcp.bind(tcpAddress, backlog);
                return new UdpTcpPair(udp, tcp);
            } catch (IOException e) {
                tcp.close();
                udp.close();
                if (address.getPort() != 0 || attempt >= EPHEMERAL_ATTEMPTS) {
                    throw new IOException("TCP port " + tcpAddress + " is not free: " + e.getMessage(), e);
                }
            }
        }
    }

    @Override
    public void close() throws IOException {
        try (tcp) {
            udp.close();
        }
    }
}
