package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import java.net.UnknownHostException;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Socket calls on raw file descriptors through the FFM API, for what the JDK's socket classes
 * cannot do: read {@code SO_ORIGINAL_DST} from an accepted socket, set {@code SO_MARK}, work on a
 * descriptor that another library (Netty's epoll transport) owns, or read a unix socket peer's
 * credentials ({@code SO_PEERCRED}: the pid the kernel recorded at {@code connect}, which the JDK's
 * {@code UnixDomainPrincipal} leaves out). Each failure is a {@link NativeException} naming the call.
 * Stateless and thread-safe.
 */
public final class Sockets {
    public static final int AF_INET = 2;
    public static final int AF_INET6 = 10;
    public static final int SOL_SOCKET = 1;
    public static final int SOL_IP = 0;
    public static final int SOL_IPV6 = 41;
    /** Netfilter's (and Wisp's eBPF getsockopt hook's) original-destination option, for both families. */
    public static final int SO_ORIGINAL_DST = 80;
    public static final int SO_REUSEADDR = 2;
    public static final int SO_MARK = 36;
    static final int SOCK_STREAM = 1;
    static final int SOCK_DGRAM = 2;
    /** {@code SOL_IP}: bind to an address that is not local, and send from it. */
    public static final int IP_TRANSPARENT = 19;
    /** {@code IPV6_TRANSPARENT}, at level {@link #SOL_IPV6}: bind an IPv6 address that is not local. */
    public static final int IPV6_TRANSPARENT = 75;

    private static final int AF_UNIX = 1;
    private static final int SO_PEERCRED = 17;
    private static final int SHUT_RDWR = 2;
    /** {@code sizeof(struct sockaddr_un)}: a 2-byte family and a 108-byte path (107 usable). */
    private static final int SOCKADDR_UN_SIZE = 110;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int SO_RCVTIMEO = 20;
    private static final int SHUT_WR = 1;
    private static final long SOCKADDR_SIZE = 28;

    private static final MethodHandle SOCKET = Libc.downcall("socket",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle BIND = addrCall("bind");
    private static final MethodHandle CONNECT = addrCall("connect");
    private static final MethodHandle LISTEN = Libc.downcall("listen",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle ACCEPT4 = Libc.downcall("accept4",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle GETSOCKOPT = Libc.downcall("getsockopt",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    private static final MethodHandle SETSOCKOPT = Libc.downcall("setsockopt",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle GETPEERNAME = nameCall("getpeername");
    private static final MethodHandle GETSOCKNAME = nameCall("getsockname");
    private static final MethodHandle SHUTDOWN = Libc.downcall("shutdown",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

    private Sockets() {}

    private static MethodHandle addrCall(String name) {
        return Libc.downcall(name, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    }

    private static MethodHandle nameCall(String name) {
        return Libc.downcall(name, FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    }

    /** A blocking TCP socket of the address's family, close-on-exec. The caller owns the descriptor. */
    public static int tcpSocket(InetSocketAddress forAddress) throws NativeException {
        requireNonNull(forAddress, "forAddress");
        return socket(forAddress.getAddress() instanceof Inet6Address ? AF_INET6 : AF_INET, SOCK_STREAM);
    }

    /** {@code socket(family, type | SOCK_CLOEXEC, 0)}; the caller owns the descriptor. */
    static int socket(int family, int type) throws NativeException {
        return socket(family, type, 0, (family == AF_INET ? "AF_INET" : family == AF_UNIX ? "AF_UNIX" : "AF_INET6")
                + ", type " + type);
    }

    /**
     * {@code socket(family, type | SOCK_CLOEXEC, protocol)}, {@code what} naming the arguments in an
     * error; the caller owns the descriptor.
     */
    static int socket(int family, int type, int protocol, String what) throws NativeException {
        return (int) Libc.call("socket(" + what + ")",
                err -> (int) SOCKET.invokeExact(err, family, type | SOCK_CLOEXEC, protocol));
    }

    /** {@code bind(fd, address, sizeof address)}, {@code what} naming the address in an error. */
    static void bind(int fd, MemorySegment address, String what) throws NativeException {
        Libc.call("bind(" + what + ")", err -> (int) BIND.invokeExact(err, fd, address, (int) address.byteSize()));
    }

    /** {@code SO_RCVTIMEO}: a blocking receive that waits longer than {@code timeout} fails with EAGAIN. */
    static void setReceiveTimeout(int fd, Duration timeout) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment timeval = arena.allocate(16); // seconds, microseconds
            timeval.set(ValueLayout.JAVA_LONG, 0, timeout.toSeconds());
            timeval.set(ValueLayout.JAVA_LONG, 8, timeout.toNanosPart() / 1000);
            setOption(fd, SOL_SOCKET, SO_RCVTIMEO, timeval, "SO_RCVTIMEO");
        }
    }

    /** {@code bind(fd, address)}. */
    static void bind(int fd, InetSocketAddress address) throws NativeException {
        addressCall(BIND, fd, address, "bind");
    }

    /** A listening TCP socket bound to {@code address} (with {@code SO_REUSEADDR}). */
    public static int listen(InetSocketAddress address, int backlog) throws NativeException {
        int fd = tcpSocket(address);
        try {
            setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
            bind(fd, address);
            Libc.call("listen(" + address + ")", err -> (int) LISTEN.invokeExact(err, fd, backlog));
            return fd;
        } catch (NativeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /**
     * A listening unix stream socket bound to {@code path}, which must not exist (the file is created
     * with the umask's mode: set the mode after binding, or bind inside a directory that decides access).
     */
    public static int listenUnix(Path path, int backlog) throws NativeException {
        byte[] name = requireNonNull(path, "path").toString().getBytes(StandardCharsets.UTF_8);
        if (name.length >= SOCKADDR_UN_SIZE - 2) {
            throw new IllegalArgumentException("unix socket path " + path + " is longer than "
                    + (SOCKADDR_UN_SIZE - 3) + " bytes: choose a shorter directory");
        }
        int fd = socket(AF_UNIX, SOCK_STREAM);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = arena.allocate(SOCKADDR_UN_SIZE);
            addr.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
            MemorySegment.copy(name, 0, addr, ValueLayout.JAVA_BYTE, 2, name.length);
            bind(fd, addr, path.toString());
            Libc.call("listen(" + path + ")", err -> (int) LISTEN.invokeExact(err, fd, backlog));
            return fd;
        } catch (NativeException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /** The process at the other end of a connected unix socket, as the kernel saw it at {@code connect}. */
    public record PeerCredentials(int pid, int uid, int gid) {}

    /** {@code getsockopt(SO_PEERCRED)} of a connected unix socket (pid in this process's pid namespace). */
    public static PeerCredentials peerCredentials(int fd) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cred = arena.allocate(12);
            MemorySegment len = arena.allocateFrom(ValueLayout.JAVA_INT, 12);
            Libc.call("getsockopt(fd " + fd + ", SO_PEERCRED)",
                    err -> (int) GETSOCKOPT.invokeExact(err, fd, SOL_SOCKET, SO_PEERCRED, cred, len));
            return new PeerCredentials(cred.get(ValueLayout.JAVA_INT, 0), cred.get(ValueLayout.JAVA_INT, 4),
                    cred.get(ValueLayout.JAVA_INT, 8));
        }
    }

    /**
     * {@code shutdown(fd, SHUT_RDWR)}: ends both directions, and wakes a thread blocked in
     * {@code accept} on a listening socket (which {@code close} alone does not).
     */
    public static void shutdown(int fd) throws NativeException {
        Libc.call("shutdown(fd " + fd + ", SHUT_RDWR)", err -> (int) SHUTDOWN.invokeExact(err, fd, SHUT_RDWR));
    }

    /** Accepts one connection (blocking); the caller owns the returned descriptor. */
    public static int accept(int listenFd) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            return (int) Libc.retryingInterrupted("accept4(fd " + listenFd + ")", Libc.newErrnoBuffer(arena), 0,
                    err -> (int) ACCEPT4.invokeExact(err, listenFd, MemorySegment.NULL, MemorySegment.NULL,
                            SOCK_CLOEXEC));
        }
    }

    /**
     * Accepts connections on {@code listenFd} on the calling thread, handing each to {@code onAccepted}
     * (which owns it), until {@code closed} is true; an accept that fails while not closed is given to
     * {@code onFailure} and ends the loop (close with {@link #shutdown} to wake a blocked accept).
     */
    public static void acceptUntilClosed(int listenFd, BooleanSupplier closed, IntConsumer onAccepted,
            Consumer<NativeException> onFailure) {
        while (!closed.getAsBoolean()) {
            int fd;
            try {
                fd = accept(listenFd);
            } catch (NativeException e) {
                if (!closed.getAsBoolean()) {
                    onFailure.accept(e);
                }
                return;
            }
            onAccepted.accept(fd);
        }
    }

    /** Connects a new TCP socket to {@code address}, optionally with {@code SO_MARK} set first (0 = none). */
    public static int connect(InetSocketAddress address, int mark) throws NativeException {
        int fd = tcpSocket(address);
        try {
            if (mark != 0) {
                setIntOption(fd, SOL_SOCKET, SO_MARK, mark, "SO_MARK");
            }
            addressCall(CONNECT, fd, address, "connect");
            return fd;
        } catch (NativeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    /** {@code setsockopt(fd, level, name, &value, 4)}. */
    public static void setIntOption(int fd, int level, int name, int value, String what) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            setOption(fd, level, name, arena.allocateFrom(ValueLayout.JAVA_INT, value), what);
        }
    }

    /** {@code setsockopt(fd, level, name, value, sizeof value)}. */
    static void setOption(int fd, int level, int name, MemorySegment value, String what) throws NativeException {
        Libc.call("setsockopt(" + what + ")",
                err -> (int) SETSOCKOPT.invokeExact(err, fd, level, name, value, (int) value.byteSize()));
    }

    /**
     * The destination the connection was addressed to before a redirect: {@code getsockopt(SOL_IP or
     * SOL_IPV6, SO_ORIGINAL_DST)}, answered by netfilter conntrack or by Wisp's eBPF getsockopt hook.
     */
    public static InetSocketAddress originalDestination(int fd) throws NativeException {
        InetSocketAddress local = localAddress(fd);
        int level = local.getAddress() instanceof Inet6Address ? SOL_IPV6 : SOL_IP;
        return readAddress("getsockopt(SO_ORIGINAL_DST)",
                (err, addr, len) -> (int) GETSOCKOPT.invokeExact(err, fd, level, SO_ORIGINAL_DST, addr, len));
    }

    /** {@code getpeername}: the address the socket is connected to, as the kernel reports it to this process. */
    public static InetSocketAddress peerAddress(int fd) throws NativeException {
        return name(GETPEERNAME, fd, "getpeername");
    }

    /** {@code getsockname}: the socket's local address. */
    public static InetSocketAddress localAddress(int fd) throws NativeException {
        return name(GETSOCKNAME, fd, "getsockname");
    }

    /** Half-closes the sending side ({@code shutdown(SHUT_WR)}), so the peer reads end of stream. */
    public static void shutdownOutput(int fd) throws NativeException {
        Libc.call("shutdown(fd " + fd + ")", err -> (int) SHUTDOWN.invokeExact(err, fd, SHUT_WR));
    }

    private static InetSocketAddress name(MethodHandle call, int fd, String what) throws NativeException {
        return readAddress(what + "(fd " + fd + ")", (err, addr, len) -> (int) call.invokeExact(err, fd, addr, len));
    }

    /** A call that writes a socket address into {@code addr}, its length in and out through {@code len}. */
    @FunctionalInterface
    private interface AddressOut {
        int invoke(MemorySegment err, MemorySegment addr, MemorySegment len) throws Throwable;
    }

    private static InetSocketAddress readAddress(String what, AddressOut call) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = arena.allocate(SOCKADDR_SIZE);
            MemorySegment len = arena.allocateFrom(ValueLayout.JAVA_INT, (int) SOCKADDR_SIZE);
            Libc.call(what, err -> call.invoke(err, addr, len));
            return decode(addr);
        }
    }

    private static void addressCall(MethodHandle call, int fd, InetSocketAddress address, String what)
            throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment addr = encode(arena, address);
            Libc.call(what + "(" + address + ")", err -> (int) call.invokeExact(err, fd, addr, (int) addr.byteSize()));
        }
    }

    /** Encodes a {@code sockaddr_in} or {@code sockaddr_in6}. */
    public static MemorySegment encode(Arena arena, InetSocketAddress address) {
        requireNonNull(address, "address");
        InetAddress ip = requireNonNull(address.getAddress(), "unresolved address " + address);
        byte[] raw = ip.getAddress();
        MemorySegment s = arena.allocate(ip instanceof Inet4Address ? 16 : 28);
        s.set(ValueLayout.JAVA_SHORT, 0, (short) (ip instanceof Inet4Address ? AF_INET : AF_INET6));
        s.set(ValueLayout.JAVA_SHORT.withOrder(ByteOrder.BIG_ENDIAN), 2, (short) address.getPort());
        MemorySegment.copy(raw, 0, s, ValueLayout.JAVA_BYTE, ip instanceof Inet4Address ? 4 : 8, raw.length);
        return s;
    }

    /** Decodes a {@code sockaddr_in} or {@code sockaddr_in6}. */
    public static InetSocketAddress decode(MemorySegment s) {
        int family = s.get(ValueLayout.JAVA_SHORT, 0);
        int port = Short.toUnsignedInt(s.get(ValueLayout.JAVA_SHORT.withOrder(ByteOrder.BIG_ENDIAN), 2));
        byte[] raw = new byte[family == AF_INET ? 4 : 16];
        if (family != AF_INET && family != AF_INET6) {
            throw new IllegalArgumentException("not an IP socket address: family " + family);
        }
        MemorySegment.copy(s, ValueLayout.JAVA_BYTE, family == AF_INET ? 4 : 8, raw, 0, raw.length);
        try {
            return new InetSocketAddress(InetAddress.getByAddress(raw), port);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("bad address length " + raw.length, e);
        }
    }

}
