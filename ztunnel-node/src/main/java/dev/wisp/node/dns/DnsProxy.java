package dev.wisp.node.dns;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.state.WorkloadIndex;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's DNS proxy (ztunnel's port 15053), on UDP and TCP: mesh names are answered from the
 * agent's state ({@link MeshNames}), everything else is relayed unchanged to the upstream resolver
 * and its answer relayed back. It answers only where it is told to listen ({@link #listen}), and
 * there only to that listener's clients: the agent listens on the node's loopback and, with
 * capture, on loopback inside each pod's network namespace, where capture sends the pod's port-53
 * traffic. It is never reachable from other hosts, so it cannot be used as an open resolver.
 *
 * <p>Threads: each listener reads its UDP socket and accepts TCP on its own virtual threads and
 * answers mesh names inline. Each relayed UDP query and each TCP connection runs on a virtual
 * thread, at most {@link #MAX_IN_FLIGHT} of each at once over all listeners (more are dropped: the
 * client retries), each bounded by {@link #UPSTREAM_TIMEOUT} per exchange. An upstream UDP answer is
 * accepted only from the upstream (a connected socket) and with the query's ID. Relays open their
 * sockets in the agent's own namespace. {@link #close} closes every listener; the loops end, and
 * relays in flight end at their timeout.
 */
public final class DnsProxy implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DnsProxy.class);
    static final int MAX_IN_FLIGHT = 256;
    static final Duration UPSTREAM_TIMEOUT = Duration.ofSeconds(3);
    /** A TCP client idle this long is closed; queries per TCP connection are bounded too. */
    static final Duration TCP_IDLE = Duration.ofSeconds(10);
    static final int QUERIES_PER_TCP_CONNECTION = 100;
    /** The clients of a listener on loopback: the addresses a local process sends from by default. */
    public static final Set<InetAddress> LOOPBACK_CLIENTS = Set.of(InetAddress.ofLiteral("127.0.0.1"),
            InetAddress.ofLiteral("::1"));

    private final MeshNames names;
    private final InetSocketAddress upstream;
    private final Set<DnsListener> listeners = ConcurrentHashMap.newKeySet();
    private final Semaphore udpRelays = new Semaphore(MAX_IN_FLIGHT);
    private final Semaphore tcpClients = new Semaphore(MAX_IN_FLIGHT);
    private final AtomicLong answered = new AtomicLong();
    private final AtomicLong forwarded = new AtomicLong();
    private final AtomicLong refused = new AtomicLong();
    private volatile boolean closed;

    private DnsProxy(WorkloadIndex index, InetSocketAddress upstream) {
        this.names = new MeshNames(index);
        this.upstream = upstream;
    }

    /** A proxy answering from {@code index} and relaying to {@code upstream}; it listens nowhere yet. */
    public static DnsProxy create(WorkloadIndex index, InetSocketAddress upstream) {
        requireNonNull(index, "index");
        requireNonNull(upstream, "upstream");
        return new DnsProxy(index, upstream);
    }

    /**
     * Binds UDP and TCP on {@code address} (port 0: a free UDP port, and TCP on the same number) in
     * the calling thread's network namespace and serves queries whose source address is in
     * {@code clients}; others are refused.
     */
    public DnsListener listen(InetSocketAddress address, Set<InetAddress> clients) throws IOException {
        requireNonNull(address, "address");
        requireNonNull(clients, "clients");
        DnsListener l = DnsListener.bind(this, address, clients);
        listeners.add(l);
        if (closed) {
            l.close();
            throw new IOException("DNS proxy: closed while " + address + " was being bound");
        }
        return l;
    }

    /** Queries answered from the mesh state (including FORMERR answers). */
    public long answered() {
        return answered.get();
    }

    /** Queries relayed to the upstream resolver. */
    public long forwarded() {
        return forwarded.get();
    }

    /** Datagrams and connections from addresses outside their listener's clients, left unanswered. */
    public long refused() {
        return refused.get();
    }

    void refusedClient(SocketAddress client) {
        refused.incrementAndGet();
        LOG.debug("DNS proxy: {} is not a client of this listener; ignored", client);
    }

    void forget(DnsListener l) {
        listeners.remove(l);
    }

    /** One query from an allowed client, read into {@code buf} (reused by the caller afterwards). */
    void datagram(byte[] buf, int length, SocketAddress client, DatagramSocket replyVia) {
        switch (names.reply(buf, length, DnsMessage.UDP_LIMIT)) {
            case MeshNames.Reply.Answer(byte[] m) -> {
                answered.incrementAndGet();
                send(replyVia, m, client);
            }
            case MeshNames.Reply.Forward() -> {
                if (udpRelays.tryAcquire()) {
                    byte[] query = Arrays.copyOf(buf, length);
                    Thread.ofVirtual().name("wisp-dns-relay").start(() -> {
                        try {
                            relayUdp(query, client, replyVia);
                        } finally {
                            udpRelays.release();
                        }
                    });
                }
            }
            case MeshNames.Reply.Drop() -> {}
        }
    }

    /** An accepted connection from an allowed client: served on its own virtual thread, then closed. */
    void connection(Socket c) {
        if (!tcpClients.tryAcquire()) {
            closeQuietly(c);
            return;
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

    private void relayUdp(byte[] query, SocketAddress client, DatagramSocket replyVia) {
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
                    send(replyVia, Arrays.copyOf(buf, in.getLength()), client);
                    return;
                }
            }
        } catch (IOException e) {
            LOG.debug("DNS proxy: upstream {} did not answer over UDP: {}", upstream, e.toString());
        }
    }

    private static void send(DatagramSocket via, byte[] message, SocketAddress client) {
        try {
            via.send(new DatagramPacket(message, message.length, client));
        } catch (IOException e) {
            LOG.debug("DNS proxy: answer to {} not sent: {}", client, e.toString());
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

    static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // nothing to do for a connection refused for lack of room
        }
    }

    @Override
    public void close() {
        closed = true;
        for (DnsListener l : List.copyOf(listeners)) {
            l.close();
        }
    }
}
