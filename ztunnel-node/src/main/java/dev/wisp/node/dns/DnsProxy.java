package dev.wisp.node.dns;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.state.WorkloadIndex;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's DNS proxy (ztunnel's port 15053), on UDP and TCP: mesh names are answered from the
 * agent's state ({@link MeshNames}), everything else is relayed unchanged to the upstream resolver
 * and its answer relayed back. Pods reach it when capture redirects their port-53 traffic here, or
 * by addressing it directly.
 *
 * <p>Threads: one platform thread reads the UDP socket and answers mesh names inline; one accepts
 * TCP connections. Each relayed UDP query and each TCP connection runs on a virtual thread, at most
 * {@link #MAX_IN_FLIGHT} of each at once (more are dropped: the client retries), each bounded by
 * {@link #UPSTREAM_TIMEOUT} per exchange. An upstream UDP answer is accepted only from the upstream
 * (a connected socket) and with the query's ID. {@link #close} closes both sockets; the loops end,
 * and relays in flight end at their timeout.
 */
public final class DnsProxy implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DnsProxy.class);
    static final int MAX_IN_FLIGHT = 256;
    static final Duration UPSTREAM_TIMEOUT = Duration.ofSeconds(3);
    /** A TCP client idle this long is closed; queries per TCP connection are bounded too. */
    static final Duration TCP_IDLE = Duration.ofSeconds(10);
    static final int QUERIES_PER_TCP_CONNECTION = 100;

    private final MeshNames names;
    private final InetSocketAddress upstream;
    private final DatagramSocket udp;
    private final ServerSocket tcp;
    private final Semaphore udpRelays = new Semaphore(MAX_IN_FLIGHT);
    private final Semaphore tcpClients = new Semaphore(MAX_IN_FLIGHT);
    private final AtomicLong answered = new AtomicLong();
    private final AtomicLong forwarded = new AtomicLong();

    private DnsProxy(WorkloadIndex index, InetSocketAddress upstream, DatagramSocket udp, ServerSocket tcp) {
        this.names = new MeshNames(index);
        this.upstream = upstream;
        this.udp = udp;
        this.tcp = tcp;
    }

    /**
     * Binds UDP and TCP on {@code listen} (port 0: a free UDP port, and TCP on the same number) and
     * starts serving; relays go to {@code upstream}.
     */
    public static DnsProxy start(WorkloadIndex index, InetSocketAddress listen, InetSocketAddress upstream)
            throws IOException {
        requireNonNull(index, "index");
        requireNonNull(listen, "listen");
        requireNonNull(upstream, "upstream");
        DatagramSocket udp = new DatagramSocket(listen);
        ServerSocket tcp;
        try {
            tcp = new ServerSocket();
            tcp.setReuseAddress(true);
            tcp.bind(listen.getPort() == 0 ? new InetSocketAddress(listen.getAddress(), udp.getLocalPort()) : listen,
                    64);
        } catch (IOException e) {
            udp.close();
            throw new IOException("DNS proxy: TCP port " + listen + " is not free: " + e.getMessage(), e);
        }
        DnsProxy p = new DnsProxy(index, upstream, udp, tcp);
        Thread.ofPlatform().daemon().name("wisp-dns-udp").start(p::udpLoop);
        Thread.ofPlatform().daemon().name("wisp-dns-tcp").start(p::tcpLoop);
        return p;
    }

    public InetSocketAddress udpAddress() {
        return (InetSocketAddress) udp.getLocalSocketAddress();
    }

    public InetSocketAddress tcpAddress() {
        return (InetSocketAddress) tcp.getLocalSocketAddress();
    }

    /** Queries answered from the mesh state (including FORMERR answers). */
    public long answered() {
        return answered.get();
    }

    /** Queries relayed to the upstream resolver. */
    public long forwarded() {
        return forwarded.get();
    }

    private void udpLoop() {
        byte[] buf = new byte[DnsMessage.MAX_MESSAGE];
        while (!udp.isClosed()) {
            DatagramPacket in = new DatagramPacket(buf, buf.length);
            try {
                udp.receive(in);
            } catch (IOException e) {
                if (!udp.isClosed()) {
                    LOG.warn("DNS proxy: UDP receive failed: {}", e.toString());
                }
                continue;
            }
            SocketAddress client = in.getSocketAddress();
            switch (names.reply(buf, in.getLength(), DnsMessage.UDP_LIMIT)) {
                case MeshNames.Reply.Answer(byte[] m) -> {
                    answered.incrementAndGet();
                    send(m, client);
                }
                case MeshNames.Reply.Forward() -> {
                    if (udpRelays.tryAcquire()) {
                        byte[] query = Arrays.copyOf(buf, in.getLength());
                        Thread.ofVirtual().name("wisp-dns-relay").start(() -> {
                            try {
                                relayUdp(query, client);
                            } finally {
                                udpRelays.release();
                            }
                        });
                    }
                }
                case MeshNames.Reply.Drop() -> {}
            }
        }
    }

    private void relayUdp(byte[] query, SocketAddress client) {
        forwarded.incrementAndGet();
        try (DatagramSocket s = new DatagramSocket()) {
            s.connect(upstream);
            s.setSoTimeout((int) UPSTREAM_TIMEOUT.toMillis());
            s.send(new DatagramPacket(query, query.length));
            byte[] buf = new byte[DnsMessage.MAX_MESSAGE];
            long deadline = System.nanoTime() + UPSTREAM_TIMEOUT.toNanos();
            while (System.nanoTime() < deadline) {
                DatagramPacket in = new DatagramPacket(buf, buf.length);
                s.receive(in);
                if (DnsMessage.id(buf, in.getLength()) == DnsMessage.u16(query, 0)) {
                    send(Arrays.copyOf(buf, in.getLength()), client);
                    return;
                }
            }
        } catch (IOException e) {
            LOG.debug("DNS proxy: upstream {} did not answer over UDP: {}", upstream, e.toString());
        }
    }

    private void send(byte[] message, SocketAddress client) {
        try {
            udp.send(new DatagramPacket(message, message.length, client));
        } catch (IOException e) {
            LOG.debug("DNS proxy: answer to {} not sent: {}", client, e.toString());
        }
    }

    private void tcpLoop() {
        while (!tcp.isClosed()) {
            Socket c;
            try {
                c = tcp.accept();
            } catch (IOException e) {
                if (!tcp.isClosed()) {
                    LOG.warn("DNS proxy: TCP accept failed: {}", e.toString());
                }
                continue;
            }
            if (!tcpClients.tryAcquire()) {
                closeQuietly(c);
                continue;
            }
            Thread.ofVirtual().name("wisp-dns-tcp-client").start(() -> {
                try (c) {
                    serveTcp(c);
                } catch (IOException e) {
                    LOG.debug("DNS proxy: TCP client {} ended: {}", c.getRemoteSocketAddress(), e.toString());
                } finally {
                    tcpClients.release();
                }
            });
        }
    }

    private void serveTcp(Socket c) throws IOException {
        c.setSoTimeout((int) TCP_IDLE.toMillis());
        DataInputStream in = new DataInputStream(c.getInputStream());
        OutputStream out = c.getOutputStream();
        for (int n = 0; n < QUERIES_PER_TCP_CONNECTION; n++) {
            byte[] query = readFramed(in);
            if (query == null) {
                return;
            }
            switch (names.reply(query, query.length, DnsMessage.MAX_MESSAGE)) {
                case MeshNames.Reply.Answer(byte[] m) -> {
                    answered.incrementAndGet();
                    writeFramed(out, m);
                }
                case MeshNames.Reply.Forward() -> writeFramed(out, relayTcp(query));
                case MeshNames.Reply.Drop() -> {
                    return;
                }
            }
        }
    }

    private byte[] relayTcp(byte[] query) throws IOException {
        forwarded.incrementAndGet();
        try (Socket s = new Socket()) {
            int timeout = (int) UPSTREAM_TIMEOUT.toMillis();
            s.connect(upstream, timeout);
            s.setSoTimeout(timeout);
            writeFramed(s.getOutputStream(), query);
            byte[] answer = readFramed(new DataInputStream(s.getInputStream()));
            if (answer == null || DnsMessage.id(answer, answer.length) != DnsMessage.u16(query, 0)) {
                throw new IOException("upstream " + upstream + " closed or answered another query over TCP");
            }
            return answer;
        }
    }

    /** One length-prefixed message (RFC 1035 4.2.2); null at a clean end of stream. */
    private static byte[] readFramed(DataInputStream in) throws IOException {
        int hi = in.read();
        if (hi < 0) {
            return null;
        }
        int length = (hi << 8) | in.readUnsignedByte();
        byte[] m = new byte[length];
        in.readFully(m);
        return m;
    }

    private static void writeFramed(OutputStream out, byte[] m) throws IOException {
        DataOutputStream d = new DataOutputStream(out);
        d.writeShort(m.length);
        d.write(m);
        d.flush();
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // nothing to do for a connection refused for lack of room
        }
    }

    @Override
    public void close() {
        udp.close();
        try {
            tcp.close();
        } catch (IOException e) {
            LOG.debug("DNS proxy: closing the TCP listener: {}", e.toString());
        }
    }
}
