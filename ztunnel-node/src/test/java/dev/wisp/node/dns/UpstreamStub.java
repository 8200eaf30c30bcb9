package dev.wisp.node.dns;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A resolver on loopback for tests, on UDP and TCP of one port: answers every query with
 * {@link #ADDRESS} (as an A record, whatever the type asked) and counts what it was asked.
 */
final class UpstreamStub implements AutoCloseable {
    static final InetAddress ADDRESS = InetAddress.ofLiteral("203.0.113.7");
    final DatagramSocket udp;
    final ServerSocket tcp;
    final AtomicInteger udpQueries = new AtomicInteger();
    final AtomicInteger tcpQueries = new AtomicInteger();

    UpstreamStub() throws IOException {
        udp = new DatagramSocket(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        tcp = new ServerSocket(udp.getLocalPort(), 8, InetAddress.getLoopbackAddress());
        Thread.ofPlatform().daemon().name("stub-dns-udp").start(this::udpLoop);
        Thread.ofPlatform().daemon().name("stub-dns-tcp").start(this::tcpLoop);
    }

    InetSocketAddress address() {
        return (InetSocketAddress) udp.getLocalSocketAddress();
    }

    static byte[] answer(byte[] query, int length) throws DnsFormatException {
        return DnsMessage.answer(DnsMessage.parse(query, length), List.of(ADDRESS), 60, DnsMessage.UDP_LIMIT);
    }

    private void udpLoop() {
        byte[] buf = new byte[2048];
        while (!udp.isClosed()) {
            try {
                DatagramPacket p = new DatagramPacket(buf, buf.length);
                udp.receive(p);
                udpQueries.incrementAndGet();
                byte[] a = answer(buf, p.getLength());
                udp.send(new DatagramPacket(a, a.length, p.getSocketAddress()));
            } catch (IOException | DnsFormatException e) {
                // closed, or a query the stub cannot read: not answered
            }
        }
    }

    private void tcpLoop() {
        while (!tcp.isClosed()) {
            try (Socket s = tcp.accept()) {
                DataInputStream in = new DataInputStream(s.getInputStream());
                byte[] q = new byte[in.readUnsignedShort()];
                in.readFully(q);
                tcpQueries.incrementAndGet();
                byte[] a = answer(q, q.length);
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                out.writeShort(a.length);
                out.write(a);
                out.flush();
            } catch (IOException | DnsFormatException e) {
                // closed, or a query the stub cannot read: not answered
            }
        }
    }

    @Override
    public void close() throws IOException {
        udp.close();
        tcp.close();
    }
}
