package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

/**
 * A layer-3 TUN interface ({@code /dev/net/tun}, {@code TUNSETIFF} with {@code IFF_TUN | IFF_NO_PI}):
 * one IP packet per read or write, no packet-information header. Packets move straight between the
 * kernel and Java heap arrays (critical downcalls with heap access), so the data path copies
 * nothing extra. The descriptor is non-blocking; {@link #read} waits in {@code poll} with a timeout
 * so a reader thread notices {@link #close} promptly. Reads and writes are thread-safe (each is one
 * syscall); {@link #close} once.
 */
public final class Tun extends OwnedDescriptor {
    private static final long TUNSETIFF = 0x400454caL;
    private static final long SIOCSIFMTU = 0x8922L;
    private static final long SIOCGIFMTU = 0x8921L;
    private static final short IFF_TUN = 0x0001;
    private static final short IFF_NO_PI = 0x1000;
    private static final short IFF_VNET_HDR = 0x4000;
    private static final long TUNSETOFFLOAD = 0x400454d0L;
    private static final long TUN_F_CSUM = 0x01;
    private static final long TUN_F_TSO4 = 0x02;
    private static final long TUN_F_TSO6 = 0x04;
    private static final int IFNAMSIZ = 16;

    private static final MethodHandle READ = Libc.plainDowncall("read",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG),
            Linker.Option.critical(true));
    private static final MethodHandle WRITE = Libc.plainDowncall("write", FunctionDescriptor.of(ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG),
            Linker.Option.critical(true));

    private final String name;
    private final boolean offload;

    private Tun(String name, int fd, boolean offload) {
        super(fd);
        this.name = name;
        this.offload = offload;
    }

    /**
     * Creates (or attaches to) the TUN interface {@code name}. Needs CAP_NET_ADMIN; the interface
     * disappears when the descriptor closes, unless made persistent elsewhere.
     */
    public static Tun open(String name) throws NativeException {
        return open(name, false);
    }

    /**
     * Like {@link #open(String)}; with {@code offload} the interface is opened with
     * {@code IFF_VNET_HDR} and TCP segmentation / checksum offload ({@code TUN_F_CSUM|TSO4|TSO6}):
     * every read and write then starts with a 10-byte {@code virtio_net_hdr}, and reads may carry
     * TCP super-segments of up to 64 KiB that the reader must cut into packets.
     */
    public static Tun open(String name, boolean offload) throws NativeException {
        requireNonNull(name, "name");
        byte[] n = name.getBytes(StandardCharsets.US_ASCII);
        if (n.length == 0 || n.length >= IFNAMSIZ) {
            throw new IllegalArgumentException("interface name must be 1.." + (IFNAMSIZ - 1) + " bytes: " + name);
        }
        int fd = Libc.open("/dev/net/tun", Libc.O_RDWR | Libc.O_CLOEXEC | Libc.O_NONBLOCK);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ifr = arena.allocate(40);
            MemorySegment.copy(n, 0, ifr, ValueLayout.JAVA_BYTE, 0, n.length);
            short flags = (short) (IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0));
            ifr.set(ValueLayout.JAVA_SHORT, IFNAMSIZ, flags);
            Libc.ioctl(fd, TUNSETIFF, ifr, "TUNSETIFF " + name);
            if (offload) {
                // The argument is the flag word itself, passed by value where ioctl expects a pointer.
                Libc.ioctl(fd, TUNSETOFFLOAD, MemorySegment.ofAddress(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6),
                        "TUNSETOFFLOAD " + name);
            }
            String actual = ifr.getString(0, StandardCharsets.US_ASCII);
            return new Tun(actual, fd, offload);
        } catch (NativeException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
    }

    public String name() {
        return name;
    }

    /** Whether reads and writes carry a {@code virtio_net_hdr} (see {@link #open(String, boolean)}). */
    public boolean offload() {
        return offload;
    }

    /** Sets the interface MTU (SIOCSIFMTU on a helper socket). */
    public void setMtu(int mtu) throws NativeException {
        mtuIoctl(SIOCSIFMTU, mtu);
    }

    public int mtu() throws NativeException {
        return mtuIoctl(SIOCGIFMTU, 0);
    }

    private int mtuIoctl(long request, int value) throws NativeException {
        int sock = Sockets.socket(Sockets.AF_INET, Sockets.SOCK_DGRAM);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ifr = arena.allocate(40);
            byte[] n = name.getBytes(StandardCharsets.US_ASCII);
            MemorySegment.copy(n, 0, ifr, ValueLayout.JAVA_BYTE, 0, n.length);
            ifr.set(ValueLayout.JAVA_INT, IFNAMSIZ, value);
            Libc.ioctl(sock, request, ifr, "MTU of " + name);
            return ifr.get(ValueLayout.JAVA_INT, IFNAMSIZ);
        } finally {
            Libc.close(sock);
        }
    }

    /**
     * Reads one packet into {@code buf[off, off+len)}: its length, 0 when none arrived within
     * {@code timeoutMillis}, or -1 once closed.
     */
    public int read(byte[] buf, int off, int len, int timeoutMillis) throws NativeException {
        requireNonNull(buf, "buf");
        java.util.Objects.checkFromIndexSize(off, len, buf.length);
        MemorySegment seg = MemorySegment.ofArray(buf).asSlice(off, len);
        while (!closed()) {
            long n;
            try {
                n = (long) READ.invokeExact(fd, seg, (long) len);
            } catch (Throwable t) {
                throw new IllegalStateException("read: unexpected failure of the native call", t);
            }
            if (n >= 0) {
                return (int) n;
            }
            if (timeoutMillis == 0 || !waitReadable(timeoutMillis)) {
                return 0;
            }
        }
        return -1;
    }

    private boolean waitReadable(int timeoutMillis) {
        try (Arena arena = Arena.ofConfined()) {
            return new PollFd(arena).await(fd, PollFd.IN, timeoutMillis);
        }
    }

    /**
     * Writes one packet. Returns false when the kernel refused it (queue full, interface down):
     * like a lossy link, the packet is dropped and the caller moves on.
     */
    public boolean write(byte[] buf, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, buf.length);
        if (closed()) {
            return false;
        }
        long n;
        try {
            n = (long) WRITE.invokeExact(fd, MemorySegment.ofArray(buf).asSlice(off, len), (long) len);
        } catch (Throwable t) {
            throw new IllegalStateException("write: unexpected failure of the native call", t);
        }
        return n == len;
    }

}
