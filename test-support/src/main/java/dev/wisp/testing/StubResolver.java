package dev.wisp.testing;

import static java.util.Objects.requireNonNull;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import dev.wisp.base.UdpTcpPair;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * A DNS resolver for tests, on UDP and TCP of one address: an A question gets {@link #ADDRESS}
 * (TTL 60), any other type an empty NOERROR answer; each question is recorded in {@link #asked} as
 * {@code "udp <name>"} or {@code "tcp <name>"}. Its sockets are made in the network namespace of the
 * thread that constructs it; two virtual threads serve them until {@link #close}.
 */
public final class StubResolver implements AutoCloseable {
    public static final InetAddress ADDRESS = InetAddress.ofLiteral("203.0.113.7");
    /** The questions asked, oldest first. */
    public final Queue<String> asked = new ConcurrentLinkedQueue<>();
    private final DatagramSocket udp;
    private final ServerSocket tcp;

    /** Listens on {@code at} (port 0: a free UDP port, and TCP on the same number). */
    public StubResolver(InetSocketAddress at) throws IOException {
        requireNonNull(at, "at");
        UdpTcpPair sockets = UdpTcpPair.bind(at, 8);
        udp = sockets.udp();
        tcp = sockets.tcp();
        Thread.ofVirtual().name("stub-dns-udp").start(this::udpLoop);
        Thread.ofVirtual().name("stub-dns-tcp").start(this::tcpLoop);
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) udp.getLocalSocketAddress();
    }

    /** How many questions came over {@code protocol} ("udp" or "tcp"). */
    public long count(String protocol) {
        return asked.stream().filter(q -> q.startsWith(protocol + " ")).count();
    }

    private void udpLoop() {
        byte[] buf = new byte[2048];
        while (!udp.isClosed()) {
            try {
                DatagramPacket p = new DatagramPacket(buf, buf.length);
                udp.receive(p);
                byte[] a = answer(Arrays.copyOf(buf, p.getLength()), "udp");
                udp.send(new DatagramPacket(a, a.length, p.getSocketAddress()));
            } catch (IOException | RuntimeException e) {
                // closed, or a query it cannot read: not answered
            }
        }
    }

    private void tcpLoop() {
        while (!tcp.isClosed()) {
            try (Socket s = tcp.accept()) {
                DataInputStream in = new DataInputStream(s.getInputStream());
                byte[] q = new byte[in.readUnsignedShort()];
                in.readFully(q);
                byte[] a = answer(q, "tcp");
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                out.writeShort(a.length);
                out.write(a);
                out.flush();
            } catch (IOException | RuntimeException e) {
                // closed, or a query it cannot read: not answered
            }
        }
    }

    /** The query turned into its answer: QR and RA set, for an A question one record pointing at it. */
    private byte[] answer(byte[] q, String protocol) {
        StringBuilder name = new StringBuilder();
        int i = 12;
        while (q[i] != 0) {
            name.append(name.isEmpty() ? "" : ".").append(new String(q, i + 1, q[i], StandardCharsets.US_ASCII));
            i += 1 + q[i];
        }
        int type = ((q[i + 1] & 0xff) << 8) | (q[i + 2] & 0xff);
        asked.add(protocol + " " + name);
        byte[] head = Arrays.copyOf(q, i + 5);
        head[2] = (byte) 0x81;
        head[3] = (byte) 0x80;
        if (type != 1) {
            return head;
        }
        head[7] = 1;
        byte[] a = Arrays.copyOf(head, head.length + 16);
        byte[] rr = {(byte) 0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
        System.arraycopy(rr, 0, a, head.length, rr.length);
        System.arraycopy(ADDRESS.getAddress(), 0, a, head.length + rr.length, 4);
        return a;
    }

    @Override
    public void close() throws IOException {
        udp.close();
        tcp.close();
    }
}
