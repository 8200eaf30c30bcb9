package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.List;

/**
 * A netlink socket to the kernel ({@code socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol)},
 * bound to a port the kernel picks) that sends one request at a time and reads its whole answer:
 * {@link #request} sets the sequence number and {@code NLM_F_REQUEST | NLM_F_ACK}, then reads until
 * the ack, or, for {@code NLM_F_DUMP}, the end of the dump ({@link NetlinkReplies} decides, and turns
 * a refusal into a {@link NetlinkException} naming the request, with the kernel's extended-ack
 * sentence, which this socket asks for). Each datagram is first peeked with {@code MSG_TRUNC} to
 * learn its size, so the receive buffer grows as needed up to {@link #MAX_DATAGRAM} and a larger one
 * is an error rather than silently cut. A reply that does not come within the receive timeout is an
 * error ({@code EAGAIN}); {@code EINTR} is retried. The socket is in the network namespace of the
 * thread that opened it.
 *
 * <p>Threads: {@link #request} is synchronized (one request and its answer at a time); {@link #close}
 * once, when no request runs.
 */
public final class NetlinkSocket extends OwnedDescriptor implements NetlinkChannel {
    /** Netlink protocols: rtnetlink (links, addresses, routes) and generic netlink. */
    public static final int NETLINK_ROUTE = 0;
    public static final int NETLINK_GENERIC = 16;
    /** The largest datagram read: a bound on what one reply can make this process allocate. */
    public static final int MAX_DATAGRAM = 1 << 20;
    /** The most one answer (a dump) may hold. */
    public static final long MAX_ANSWER = 64L << 20;
    static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(5);

    private static final int AF_NETLINK = 16;
    private static final int SOCK_RAW = 3;
    private static final int SOL_NETLINK = 270;
    private static final int NETLINK_CAP_ACK = 10;
    private static final int NETLINK_EXT_ACK = 11;
    private static final int MSG_PEEK = 0x2;
    private static final int MSG_TRUNC = 0x20;
    /** {@code sizeof(struct sockaddr_nl)}: family, pad, port id, groups. */
    private static final int SOCKADDR_NL = 12;

    private static final MethodHandle SENDTO = Libc.downcall("sendto",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle RECVFROM = Libc.downcall("recvfrom",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));

    private final String name;
    private final ByteOrder order = ByteOrder.nativeOrder();
    /** Guarded by this. */
    private int seq = (int) (System.nanoTime() & 0x3fffffff);

    private NetlinkSocket(int fd, String name) {
        super(fd);
        this.name = name;
    }

    /** Opens and binds a socket of {@code protocol} ({@link #NETLINK_ROUTE}, {@link #NETLINK_GENERIC}). */
    public static NetlinkSocket open(int protocol) throws NativeException {
        return open(protocol, DEFAULT_TIMEOUT);
    }

    /** As {@link #open(int)}, waiting at most {@code timeout} for each datagram of an answer. */
    public static NetlinkSocket open(int protocol, Duration timeout) throws NativeException {
        requireNonNull(timeout, "timeout");
        String name = protocol == NETLINK_ROUTE
                ? "NETLINK_ROUTE"
                : protocol == NETLINK_GENERIC
                        ? "NETLINK_GENERIC"
                        : "netlink protocol " + protocol;
        int fd = Sockets.socket(AF_NETLINK, SOCK_RAW, protocol, "AF_NETLINK, SOCK_RAW, " + name);
        try (Arena arena = Arena.ofConfined()) {
            // Best effort: without them errors still come, only shorter (no sentence, the request echoed).
            trySet(fd, NETLINK_EXT_ACK);
            trySet(fd, NETLINK_CAP_ACK);
            Sockets.setReceiveTimeout(fd, timeout);
            MemorySegment addr = arena.allocate(SOCKADDR_NL);
            addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_NETLINK);
            Sockets.bind(fd, addr, name);
            return new NetlinkSocket(fd, name);
        } catch (NativeException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    private static void trySet(int fd, int option) {
        try {
            Sockets.setIntOption(fd, SOL_NETLINK, option, 1, "SOL_NETLINK option " + option);
        } catch (NativeException e) {
            // An old kernel: errors lose their sentence, nothing else changes.
        }
    }

    /** The byte order of the integers in this kernel's messages (the host's). */
    @Override
    public ByteOrder order() {
        return order;
    }

    /**
     * Sends {@code message} (a whole {@code nlmsghdr}-framed request, e.g. from {@link NetlinkWriter})
     * with a fresh sequence number and {@code NLM_F_REQUEST | NLM_F_ACK}, and returns the answer's data
     * messages: none for a plain ack, one for a get, every part of a dump ({@code NLM_F_DUMP} in the
     * message's flags) up to {@code NLMSG_DONE}.
     *
     * @param what names the request in errors, e.g. {@code CTRL_CMD_GETFAMILY "wireguard"}
     * @throws NetlinkException the kernel's refusal (its errno and sentence), no answer in time, or a
     *     malformed answer
     */
    @Override
    public synchronized List<NetlinkMessage> request(String what, byte[] message) throws NativeException {
        requireNonNull(what, "what");
        requireNonNull(message, "message");
        if (closed()) {
            throw new IllegalStateException(name + " socket is closed");
        }
        ByteBuffer m = ByteBuffer.wrap(message.clone()).order(order);
        if (message.length < NetlinkWriter.NLMSG_HDRLEN || m.getInt(0) != message.length) {
            throw new IllegalArgumentException(what + ": not one netlink message (length field "
                    + (message.length >= 4 ? m.getInt(0) : -1) + ", " + message.length + " bytes)");
        }
        int mySeq = ++seq;
        m.putShort(6, (short) (m.getShort(6) | NetlinkWriter.REQUEST_WITH_ACK));
        m.putInt(8, mySeq);
        NetlinkReplies replies = new NetlinkReplies(what, mySeq, order, MAX_ANSWER);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(arena);
            MemorySegment kernel = arena.allocate(SOCKADDR_NL);
            kernel.set(ValueLayout.JAVA_SHORT, 0, (short) AF_NETLINK);
            MemorySegment out = arena.allocateFrom(ValueLayout.JAVA_BYTE, m.array());
            long sent = Libc.retryingInterrupted("sendto(" + name + ", " + what + ")", err, 0,
                    e -> (long) SENDTO.invokeExact(e, fd, out, out.byteSize(), 0, kernel, SOCKADDR_NL));
            if (sent != message.length) {
                throw new NetlinkException(what, Errno.EIO, null, "sent " + sent + " of " + message.length + " bytes");
            }
            MemorySegment from = arena.allocate(SOCKADDR_NL);
            MemorySegment fromLen = arena.allocate(ValueLayout.JAVA_INT);
            MemorySegment in = arena.allocate(32 * 1024);
            while (true) {
                int size = receive(what, err, from, fromLen, MemorySegment.NULL, 0, MSG_PEEK | MSG_TRUNC);
                if (size > MAX_DATAGRAM) {
                    throw new NetlinkException(what, Errno.EMSGSIZE, null, "a reply datagram of " + size
                            + " bytes is larger than the " + MAX_DATAGRAM + " this reader accepts");
                }
                if (size > in.byteSize()) {
                    in = arena.allocate(size);
                }
                int n = receive(what, err, from, fromLen, in, (int) in.byteSize(), 0);
                byte[] datagram = in.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
                if (replies.accept(datagram, n, from.get(ValueLayout.JAVA_INT, 4))) {
                    return replies.messages();
                }
            }
        }
    }

    private int receive(String what, MemorySegment err, MemorySegment from, MemorySegment fromLen,
            MemorySegment into, int length, int flags) throws NativeException {
        fromLen.set(ValueLayout.JAVA_INT, 0, SOCKADDR_NL);
        long n = Libc.retryingInterrupted("recvfrom(" + name + ", " + what + ")", err, Errno.EAGAIN,
                e -> (long) RECVFROM.invokeExact(e, fd, into, (long) length, flags, from, fromLen));
        if (n < 0) {
            throw new NetlinkException(what, Errno.EAGAIN, null, "no answer from the kernel within the receive "
                    + "timeout");
        }
        return (int) n;
    }
}
