package dev.wisp.node.dns;

import dev.wisp.base.UdpTcpPair;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One place the {@link DnsProxy} answers: a UDP socket and a TCP listener on the same address, and
 * the set of client addresses it serves. A datagram or connection from any other address is
 * ignored (UDP) or closed unanswered (TCP) and counted as refused, so a proxy bound where others can
 * reach it is not an open resolver for them.
 *
 * <p>The sockets are created by {@link DnsProxy#listen} on the calling thread, hence in that
 * thread's network namespace: the agent opens one in each captured pod's namespace. Threads: one
 * virtual thread reads the UDP socket, one accepts TCP; both end when {@link #close} closes the
 * sockets (also closed by the proxy's close).
 */
public final class DnsListener implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DnsListener.class);
    private final DnsProxy proxy;
    private final Set<InetAddress> clients;
    private final DatagramSocket udp;
    private final ServerSocket tcp;

    private DnsListener(DnsProxy proxy, Set<InetAddress> clients, DatagramSocket udp, ServerSocket tcp) {
        this.proxy = proxy;
        this.clients = Set.copyOf(clients);
        this.udp = udp;
        this.tcp = tcp;
    }

    /** Binds UDP and TCP on {@code address} (port 0: one free number for both, see {@link UdpTcpPair}). */
    static DnsListener bind(DnsProxy proxy, InetSocketAddress address, Set<InetAddress> clients)
            throws IOException {
        UdpTcpPair sockets;
        try {
            sockets = UdpTcpPair.bind(address, 64);
        } catch (IOException e) {
            throw new IOException("DNS proxy: " + e.getMessage(), e);
        }
        DnsListener l = new DnsListener(proxy, clients, sockets.udp(), sockets.tcp());
        Thread.ofVirtual().name("wisp-dns-udp-" + address).start(l::udpLoop);
        Thread.ofVirtual().name("wisp-dns-tcp-" + address).start(l::tcpLoop);
        return l;
    }

    public InetSocketAddress udpAddress() {
        return (InetSocketAddress) udp.getLocalSocketAddress();
    }

    public InetSocketAddress tcpAddress() {
        return (InetSocketAddress) tcp.getLocalSocketAddress();
    }

    /** One blocking step of a loop: a receive or an accept and what follows it. */
    private interface Step {
        void run() throws IOException;
    }

    /** Runs {@code step} until the socket is closed; a failure while it is open is logged and the loop goes on. */
    private void loop(String what, InetSocketAddress where, BooleanSupplier closed, Step step) {
        while (!closed.getAsBoolean()) {
            try {
                step.run();
            } catch (IOException e) {
                if (!closed.getAsBoolean()) {
                    LOG.warn("DNS proxy: {} on {} failed: {}", what, where, e.toString());
                }
            }
        }
    }

    private void udpLoop() {
        byte[] buf = new byte[DnsMessage.MAX_MESSAGE];
        loop("UDP receive", udpAddress(), udp::isClosed, () -> {
            DatagramPacket in = new DatagramPacket(buf, buf.length);
            udp.receive(in);
            if (clients.contains(in.getAddress())) {
                proxy.datagram(buf, in.getLength(), in.getSocketAddress(), udp);
            } else {
                proxy.refusedClient(in.getSocketAddress());
            }
        });
    }

    private void tcpLoop() {
        loop("TCP accept", tcpAddress(), tcp::isClosed, () -> {
            Socket c = tcp.accept();
            if (clients.contains(c.getInetAddress())) {
                proxy.connection(c);
            } else {
                proxy.refusedClient(c.getRemoteSocketAddress());
                DnsProxy.closeQuietly(c);
            }
        });
    }

    @Override
    public void close() {
        proxy.forget(this);
        udp.close();
        try {
            tcp.close();
        } catch (IOException e) {
            LOG.debug("DNS proxy: closing the TCP listener {}: {}", tcpAddress(), e.toString());
        }
    }
}
