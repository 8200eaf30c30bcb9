package dev.wisp.linux;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteOrder;
import java.time.Duration;

/**
 * A dual-stack UDP socket (IPv6 with {@code IPV6_V6ONLY} off, so IPv4 peers appear as mapped
 * addresses) that moves datagrams in batches with {@code recvmmsg}/{@code sendmmsg}: one syscall
 * for up to {@link #BATCH} datagrams. Non-blocking; {@link #receive} waits in {@code poll} with a
 * timeout so a closing socket is noticed. Supports {@code SO_MARK} (fwmark). Receives block in
 * {@code recvmmsg} itself ({@code MSG_WAITFORONE} with a 200 ms {@code SO_RCVTIMEO}), one syscall
 * per batch; sends never block.
 *
 * <p>Threads: one receiving thread owns the receive batch; senders each use their own
 * {@link SendBatch}. {@link #close} once, after the threads have stopped.
 */
public final class UdpBatchSocket extends OwnedDescriptor {
    /** Datagrams per syscall. */
    public static final int BATCH = 32;
    /** Largest datagram a slot holds. */
    public static final int SLOT = 65_536;

    private static final InetAddress ANY6 = InetAddress.ofLiteral("::");
    /** How long a blocking receive waits before it answers nothing ({@code SO_RCVTIMEO}). */
    private static final Duration RECEIVE_WAIT = Duration.ofMillis(200);
    private static final int SO_SNDBUF = 7;
    private static final int SO_RCVBUF = 8;
    private static final int SO_RCVBUFFORCE = 33;
    private static final int SO_SNDBUFFORCE = 32;
    private static final int IPPROTO_IPV6 = 41;
    private static final int IPV6_V6ONLY = 26;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int MSG_WAITFORONE = 0x10000;
    private static final int SOCKADDR_LEN = 28;
    private static final int MSGHDR = 64;
    private static final ValueLayout.OfShort BE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED
            .withOrder(ByteOrder.BIG_ENDIAN);

    private static final MethodHandle RECVMMSG = Libc.downcall("recvmmsg",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    private static final MethodHandle SENDMMSG = Libc.downcall("sendmmsg",
            FunctionDescriptor.of(ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    private final int port;

    private UdpBatchSocket(int fd, int port) {
        super(fd);
        this.port = port;
    }

    /** Binds {@code [::]:port} (0 = any free port) with {@code bufferBytes} kernel buffers. */
    public static UdpBatchSocket bind(int port, int bufferBytes) throws NativeException {
        int fd = Sockets.socket(Sockets.AF_INET6, Sockets.SOCK_DGRAM);
        try {
            Sockets.setIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
            Sockets.setReceiveTimeout(fd, RECEIVE_WAIT);
            // Root may exceed rmem_max/wmem_max; others fall back to the capped option.
            if (!trySetInt(fd, SO_RCVBUFFORCE, bufferBytes)) {
                Sockets.setIntOption(fd, Sockets.SOL_SOCKET, SO_RCVBUF, bufferBytes, "SO_RCVBUF");
            }
            if (!trySetInt(fd, SO_SNDBUFFORCE, bufferBytes)) {
                Sockets.setIntOption(fd, Sockets.SOL_SOCKET, SO_SNDBUF, bufferBytes, "SO_SNDBUF");
            }
            Sockets.bind(fd, new InetSocketAddress(ANY6, port));
            return new UdpBatchSocket(fd, Sockets.localAddress(fd).getPort());
        } catch (NativeException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    private static boolean trySetInt(int fd, int option, int value) {
        try {
            Sockets.setIntOption(fd, Sockets.SOL_SOCKET, option, value, "option " + option);
            return true;
        } catch (NativeException e) {
            return false;
        }
    }

    public int port() {
        return port;
    }

    /** Sets {@code SO_MARK} on outgoing packets (needs CAP_NET_ADMIN). */
    public void setMark(int mark) throws NativeException {
        Sockets.setIntOption(fd, Sockets.SOL_SOCKET, Sockets.SO_MARK, mark, "Sockets.SO_MARK");
    }

    /** A set of native message slots for one thread's batched receives or sends. */
    public static final class Batch {
        final Arena arena = Arena.ofShared();
        final MemorySegment msgs = arena.allocate((long) MSGHDR * BATCH, 8);
        final MemorySegment iovs = arena.allocate(16L * BATCH, 8);
        final MemorySegment addrs = arena.allocate((long) SOCKADDR_LEN * BATCH, 8);
        final MemorySegment data = arena.allocate((long) SLOT * BATCH, 64);
        final PollFd pollfd = new PollFd(arena);
        final MemorySegment errno = Libc.newErrnoBuffer(arena);
        int count;
        /** Cache: the last address decoded per slot, reused while the bytes match. */
        private final InetSocketAddress[] lastFrom = new InetSocketAddress[BATCH];
        private final byte[][] lastRaw = new byte[BATCH][];
        private final byte[] scratch = new byte[SOCKADDR_LEN];

        public Batch() {
            for (int i = 0; i < BATCH; i++) {
                MemorySegment iov = iovs.asSlice(16L * i, 16);
                iov.set(ValueLayout.ADDRESS, 0, data.asSlice((long) SLOT * i, SLOT));
                iov.set(ValueLayout.JAVA_LONG, 8, SLOT);
                MemorySegment m = msgs.asSlice((long) MSGHDR * i, MSGHDR);
                m.set(ValueLayout.ADDRESS, 0, addrs.asSlice((long) SOCKADDR_LEN * i, SOCKADDR_LEN));
                m.set(ValueLayout.JAVA_INT, 8, SOCKADDR_LEN);
                m.set(ValueLayout.ADDRESS, 16, iov);
                m.set(ValueLayout.JAVA_LONG, 24, 1);
            }
        }

        /** Datagrams in the batch. */
        public int count() {
            return count;
        }

        /** Length of datagram {@code i} (after a receive). */
        public int length(int i) {
            return msgs.get(ValueLayout.JAVA_INT, (long) MSGHDR * i + 56);
        }

        /** Copies datagram {@code i} into {@code dst}. */
        public void copyOut(int i, byte[] dst, int off, int len) {
            MemorySegment.copy(data, ValueLayout.JAVA_BYTE, (long) SLOT * i, dst, off, len);
        }

        /** The sender of datagram {@code i} (after a receive). */
        public InetSocketAddress source(int i) {
            MemorySegment.copy(addrs, ValueLayout.JAVA_BYTE, (long) SOCKADDR_LEN * i, scratch, 0, SOCKADDR_LEN);
            byte[] last = lastRaw[i];
            if (last != null && java.util.Arrays.equals(last, scratch)) {
                return lastFrom[i];
            }
            InetSocketAddress a = decode(scratch);
            lastRaw[i] = scratch.clone();
            lastFrom[i] = a;
            return a;
        }

        /** Appends a datagram to send; false when the batch is full. */
        public boolean add(InetSocketAddress to, byte[] src, int off, int len) {
            if (count == BATCH) {
                return false;
            }
            int i = count++;
            MemorySegment.copy(src, off, data, ValueLayout.JAVA_BYTE, (long) SLOT * i, len);
            iovs.set(ValueLayout.JAVA_LONG, 16L * i + 8, len);
            encode(to, addrs.asSlice((long) SOCKADDR_LEN * i, SOCKADDR_LEN));
            msgs.set(ValueLayout.JAVA_INT, (long) MSGHDR * i + 8, SOCKADDR_LEN);
            return true;
        }

        void resetForReceive() {
            for (int i = 0; i < BATCH; i++) {
                iovs.set(ValueLayout.JAVA_LONG, 16L * i + 8, SLOT);
                msgs.set(ValueLayout.JAVA_INT, (long) MSGHDR * i + 8, SOCKADDR_LEN);
            }
            count = 0;
        }

        public void free() {
            arena.close();
        }
    }

    private static InetSocketAddress decode(byte[] sa) {
        int port = (sa[2] & 0xff) << 8 | (sa[3] & 0xff);
        byte[] ip = java.util.Arrays.copyOfRange(sa, 8, 24);
        try {
            // InetAddress.getByAddress turns ::ffff:a.b.c.d into an Inet4Address.
            return new InetSocketAddress(InetAddress.getByAddress(ip), port);
        } catch (UnknownHostException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void encode(InetSocketAddress to, MemorySegment sa) {
        sa.fill((byte) 0);
        sa.set(ValueLayout.JAVA_SHORT, 0, (short) Sockets.AF_INET6);
        sa.set(BE_SHORT, 2, (short) to.getPort());
        InetAddress a = to.getAddress();
        byte[] ip = a.getAddress();
        if (a instanceof Inet4Address) {
            sa.set(ValueLayout.JAVA_BYTE, 18, (byte) 0xff);
            sa.set(ValueLayout.JAVA_BYTE, 19, (byte) 0xff);
            MemorySegment.copy(ip, 0, sa, ValueLayout.JAVA_BYTE, 20, 4);
        } else {
            MemorySegment.copy(ip, 0, sa, ValueLayout.JAVA_BYTE, 8, 16);
            if (a instanceof java.net.Inet6Address v6 && v6.getScopeId() != 0) {
                sa.set(ValueLayout.JAVA_INT, 24, v6.getScopeId());
            }
        }
    }

    /**
     * Receives up to {@link #BATCH} datagrams into {@code batch}, waiting up to 200 ms for the first.
     * Returns the count (0 on timeout), or -1 once closed.
     */
    public int receive(Batch batch) throws NativeException {
        if (closed()) {
            return -1;
        }
        batch.resetForReceive();
        int n;
        try {
            n = (int) RECVMMSG.invokeExact(batch.errno, fd, batch.msgs, BATCH, MSG_WAITFORONE, MemorySegment.NULL);
        } catch (Throwable t) {
            throw new IllegalStateException("recvmmsg: unexpected failure of the native call", t);
        }
        if (n > 0) {
            batch.count = n;
            return n;
        }
        int e = Libc.errno(batch.errno);
        if (closed()) {
            return -1;
        }
        if (n < 0 && e != Errno.EAGAIN && e != Errno.EINTR) {
            throw new NativeException("recvmmsg", e);
        }
        return 0;
    }

    /**
     * Sends the datagrams of {@code batch} and empties it. Datagrams the kernel refuses (buffer full,
     * unreachable) are dropped, as a lossy network would; returns how many were sent.
     */
    public int send(Batch batch) {
        int total = batch.count;
        int sent = 0;
        int attempts = 0;
        while (sent < total && !closed() && attempts++ < 4) {
            int n;
            try {
                n = (int) SENDMMSG.invokeExact(batch.errno, fd, batch.msgs.asSlice((long) MSGHDR * sent),
                        total - sent, MSG_DONTWAIT);
            } catch (Throwable t) {
                throw new IllegalStateException("sendmmsg: unexpected failure of the native call", t);
            }
            if (n > 0) {
                sent += n;
                attempts = 0;
            } else {
                int e = Libc.errno(batch.errno);
                if (e == Errno.EAGAIN) {
                    waitWritable(batch);
                } else {
                    // This datagram cannot go (e.g. no route): skip it, keep the rest.
                    sent++;
                }
            }
        }
        batch.count = 0;
        return sent;
    }

    private void waitWritable(Batch batch) {
        batch.pollfd.await(fd, PollFd.OUT, 100);
    }

}
