package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The few libc calls Wisp needs, through the FFM API, each capturing {@code errno} and failing with
 * a {@link NativeException} that names the call. Thread-safe: the handles are immutable and the
 * errno capture buffer is per call.
 *
 * <p>{@link #downcall} lets other modules bind further libc or libbpf symbols the same way.
 */
public final class Libc {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final MemoryLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_NONBLOCK = 0x800;
    public static final int O_CLOEXEC = 0x80000;
    /** {@code setns} namespace type for network namespaces. */
    public static final int CLONE_NEWNET = 0x40000000;

    private static final MethodHandle OPEN = downcall(LIBC, "open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle CLOSE = downcall(LIBC, "close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle READ = downcall(LIBC, "read",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle WRITE = downcall(LIBC, "write",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.JAVA_LONG));
    private static final MethodHandle IOCTL = downcall(LIBC, "ioctl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.ADDRESS));
    private static final MethodHandle SETNS = downcall(LIBC, "setns",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle GETPID = plainDowncall("getpid", FunctionDescriptor.of(ValueLayout.JAVA_INT));

    private Libc() {}

    /**
     * Binds {@code name} in {@code lookup} with errno capture: the returned handle takes a capture
     * segment (from {@link #newErrnoBuffer}) as its first argument.
     */
    public static MethodHandle downcall(SymbolLookup lookup, String name, FunctionDescriptor descriptor) {
        requireNonNull(lookup, "lookup");
        MemorySegment symbol = lookup.find(requireNonNull(name, "name"))
                .orElseThrow(() -> new UnsatisfiedLinkError("native symbol not found: " + name));
        return LINKER.downcallHandle(symbol, descriptor, Linker.Option.captureCallState("errno"));
    }

    /** Binds libc's {@code name} with errno capture, as {@link #downcall(SymbolLookup, String, FunctionDescriptor)}. */
    public static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
        return downcall(LIBC, name, descriptor);
    }

    /**
     * Binds libc's {@code name} without errno capture, for calls whose failure their result tells
     * ({@link PollFd}'s {@code poll}) or hot paths that pass {@link Linker.Option#critical}.
     */
    static MethodHandle plainDowncall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = LIBC.find(requireNonNull(name, "name"))
                .orElseThrow(() -> new UnsatisfiedLinkError("native symbol not found: " + name));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }

    /** A buffer to pass as the first argument of handles from {@link #downcall}. */
    public static MemorySegment newErrnoBuffer(Arena arena) {
        return arena.allocate(CAPTURE_LAYOUT);
    }

    /** The errno that the last call using {@code buffer} left. */
    public static int errno(MemorySegment buffer) {
        return (int) ERRNO.get(buffer, 0L);
    }

    /** One call of a handle from {@link #downcall}, given its errno capture buffer; returns the C result. */
    @FunctionalInterface
    public interface Call {
        long invoke(MemorySegment errno) throws Throwable;
    }

    /**
     * Runs {@code call} once with a capture buffer of its own: its non-negative result, or a
     * {@link NativeException} naming {@code what} with the errno. Not retried on EINTR: right for
     * {@code close} (Linux frees the descriptor even then) and for calls that do not block.
     */
    public static long call(String what, Call call) throws NativeException {
        try (Arena arena = Arena.ofConfined()) {
            return invoke(what, newErrnoBuffer(arena), 0, false, call);
        }
    }

    /**
     * Runs {@code call} with {@code errnoBuffer} (the caller's, so that a hot path allocates
     * nothing), again each time a signal interrupts it (EINTR). Returns the non-negative result, or
     * -1 when it fails with {@code quietErrno} (0: none, e.g. {@code EAGAIN} for a non-blocking
     * read); any other failure is a {@link NativeException} naming {@code what}.
     */
    public static long retryingInterrupted(String what, MemorySegment errnoBuffer, int quietErrno, Call call)
            throws NativeException {
        return invoke(what, errnoBuffer, quietErrno, true, call);
    }

    private static long invoke(String what, MemorySegment err, int quietErrno, boolean retry, Call call)
            throws NativeException {
        while (true) {
            long n;
            try {
                n = call.invoke(err);
            } catch (Throwable t) {
                throw new IllegalStateException(what + ": unexpected failure of the native call", t);
            }
            if (n >= 0) {
                return n;
            }
            int e = errno(err);
            if (retry && e == Errno.EINTR) {
                continue;
            }
            if (quietErrno != 0 && e == quietErrno) {
                return -1;
            }
            throw new NativeException(what, e);
        }
    }

    public static int open(String path, int flags) throws NativeException {
        requireNonNull(path, "path");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment p = arena.allocateFrom(path);
            return (int) call("open(" + path + ")", err -> (int) OPEN.invokeExact(err, p, flags, 0));
        }
    }

    public static void close(int fd) throws NativeException {
        call("close(" + fd + ")", err -> (int) CLOSE.invokeExact(err, fd));
    }

    /**
     * Reads up to {@code length} bytes into {@code buffer}. Returns the count, 0 at end of file,
     * or -1 when a non-blocking descriptor has nothing ({@code EAGAIN}). EINTR is retried.
     */
    public static long read(int fd, MemorySegment buffer, long length, MemorySegment errnoBuffer)
            throws NativeException {
        checkLength(buffer, length);
        return retryingInterrupted("read(fd " + fd + ")", errnoBuffer, Errno.EAGAIN,
                err -> (long) READ.invokeExact(err, fd, buffer, length));
    }

    /** Writes {@code length} bytes from {@code buffer}; returns the count written (EINTR retried). */
    public static long write(int fd, MemorySegment buffer, long length, MemorySegment errnoBuffer)
            throws NativeException {
        checkLength(buffer, length);
        return retryingInterrupted("write(fd " + fd + ")", errnoBuffer, 0,
                err -> (long) WRITE.invokeExact(err, fd, buffer, length));
    }

    private static void checkLength(MemorySegment buffer, long length) {
        if (length > buffer.byteSize()) {
            throw new IndexOutOfBoundsException("length " + length + " > buffer " + buffer.byteSize());
        }
    }

    /** {@code ioctl(fd, request, arg)}; {@code what} names the request in errors. */
    public static int ioctl(int fd, long request, MemorySegment arg, String what) throws NativeException {
        return (int) call("ioctl(" + what + ")", err -> (int) IOCTL.invokeExact(err, fd, request, arg));
    }

    /**
     * Moves the calling thread into the namespace {@code fd} refers to. Only the calling OS thread
     * changes namespace: use a dedicated platform thread, never a virtual thread.
     */
    public static void setns(int fd, int nsType) throws NativeException {
        if (Thread.currentThread().isVirtual()) {
            throw new IllegalStateException("setns on a virtual thread would move its carrier thread");
        }
        call("setns(fd " + fd + ")", err -> (int) SETNS.invokeExact(err, fd, nsType));
    }

    public static int getpid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("getpid: unexpected failure of the native call", t);
        }
    }
}
