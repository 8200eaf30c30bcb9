package dev.wisp.bpf.internal;

import dev.wisp.bpf.BpfException;
import dev.wisp.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * libbpf ({@code libbpf.so.1}, 1.1 or newer) through the FFM API. Not for use outside
 * {@code dev.wisp.bpf}. Every handle captures {@code errno} (first argument: a buffer from
 * {@link Libc#newErrnoBuffer}); pointer-returning calls fail with NULL and errno, int-returning calls
 * with {@code -errno}.
 *
 * <p>libbpf's messages reach {@link #print} through one process-wide upcall: while a thread is inside
 * {@link #collecting}, they are kept for that thread (the verifier log of a failed load), otherwise
 * they go to this class's logger at debug level.
 */
public final class LibBpf {
    private static final Logger LOG = LoggerFactory.getLogger(LibBpf.class);
    private static final ValueLayout A = ValueLayout.ADDRESS;
    private static final ValueLayout I = ValueLayout.JAVA_INT;
    private static final ValueLayout L = ValueLayout.JAVA_LONG;
    private static final SymbolLookup LIB = load();

    public static final MethodHandle OBJECT_OPEN_MEM = h("bpf_object__open_mem", FunctionDescriptor.of(A, A, L, A));
    public static final MethodHandle OBJECT_LOAD = h("bpf_object__load", FunctionDescriptor.of(I, A));
    public static final MethodHandle OBJECT_CLOSE = h("bpf_object__close", FunctionDescriptor.ofVoid(A));
    public static final MethodHandle FIND_PROGRAM = h("bpf_object__find_program_by_name",
            FunctionDescriptor.of(A, A, A));
    public static final MethodHandle FIND_MAP = h("bpf_object__find_map_by_name", FunctionDescriptor.of(A, A, A));
    public static final MethodHandle PROGRAM_FD = h("bpf_program__fd", FunctionDescriptor.of(I, A));
    public static final MethodHandle MAP_FD = h("bpf_map__fd", FunctionDescriptor.of(I, A));
    public static final MethodHandle ATTACH_CGROUP = h("bpf_program__attach_cgroup", FunctionDescriptor.of(A, A, I));
    public static final MethodHandle ATTACH_NETNS = h("bpf_program__attach_netns", FunctionDescriptor.of(A, A, I));
    public static final MethodHandle LINK_OPEN = h("bpf_link__open", FunctionDescriptor.of(A, A));
    public static final MethodHandle LINK_PIN = h("bpf_link__pin", FunctionDescriptor.of(I, A, A));
    public static final MethodHandle LINK_UNPIN = h("bpf_link__unpin", FunctionDescriptor.of(I, A));
    public static final MethodHandle LINK_UPDATE = h("bpf_link__update_program", FunctionDescriptor.of(I, A, A));
    public static final MethodHandle LINK_DETACH = h("bpf_link__detach", FunctionDescriptor.of(I, A));
    public static final MethodHandle LINK_DESTROY = h("bpf_link__destroy", FunctionDescriptor.of(I, A));
    public static final MethodHandle LINK_FD = h("bpf_link__fd", FunctionDescriptor.of(I, A));
    public static final MethodHandle MAP_UPDATE = h("bpf_map_update_elem", FunctionDescriptor.of(I, I, A, A, L));
    public static final MethodHandle MAP_LOOKUP = h("bpf_map_lookup_elem", FunctionDescriptor.of(I, I, A, A));
    public static final MethodHandle MAP_DELETE = h("bpf_map_delete_elem", FunctionDescriptor.of(I, I, A));
    public static final MethodHandle MAP_NEXT_KEY = h("bpf_map_get_next_key", FunctionDescriptor.of(I, I, A, A));
    public static final MethodHandle OBJ_GET = h("bpf_obj_get", FunctionDescriptor.of(I, A));
    public static final MethodHandle RING_BUFFER_NEW = h("ring_buffer__new", FunctionDescriptor.of(A, I, A, A, A));
    public static final MethodHandle RING_BUFFER_POLL = h("ring_buffer__poll", FunctionDescriptor.of(I, A, I));
    public static final MethodHandle RING_BUFFER_FREE = h("ring_buffer__free", FunctionDescriptor.ofVoid(A));

    /** Size of {@code struct bpf_object_open_opts} in libbpf 1.1; offsets of the fields Wisp sets. */
    public static final long OPEN_OPTS_SIZE = 80;
    public static final long OPEN_OPTS_OBJECT_NAME = 8;
    public static final long OPEN_OPTS_PIN_ROOT = 24;

    private static final int LOG_SCRATCH = 1 << 20;
    private static final ThreadLocal<StringBuilder> COLLECTOR = new ThreadLocal<>();
    private static final ThreadLocal<MemorySegment> SCRATCH = ThreadLocal
            .withInitial(() -> Arena.ofAuto().allocate(LOG_SCRATCH));
    private static final MethodHandle VSNPRINTF = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("vsnprintf").orElseThrow(),
            FunctionDescriptor.of(I, A, L, A, A));

    static {
        installPrintCallback();
    }

    private LibBpf() {}

    private static SymbolLookup load() {
        try {
            return SymbolLookup.libraryLookup("libbpf.so.1", Arena.global());
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException(
                    "libbpf.so.1 not found: install Debian's libbpf1 (scripts/install-deps.sh installs libbpf-dev)", e);
        }
    }

    private static MethodHandle h(String name, FunctionDescriptor d) {
        return Libc.downcall(LIB, name, d);
    }

    private static void installPrintCallback() {
        try {
            MethodHandle target = MethodHandles.lookup().findStatic(LibBpf.class, "print",
                    MethodType.methodType(int.class, int.class, MemorySegment.class, MemorySegment.class));
            MemorySegment stub = Linker.nativeLinker().upcallStub(target, FunctionDescriptor.of(I, I, A, A),
                    Arena.global());
            MethodHandle setPrint = Linker.nativeLinker().downcallHandle(LIB.find("libbpf_set_print").orElseThrow(),
                    FunctionDescriptor.of(A, A));
            MemorySegment previous = (MemorySegment) setPrint.invokeExact(stub);
            LOG.trace("libbpf print callback installed (previous {})", previous);
        } catch (Throwable t) {
            throw new ExceptionInInitializerError(t);
        }
    }

    /**
     * The libbpf print callback: {@code int (*)(enum libbpf_print_level, const char *fmt, va_list)}.
     * On x86-64 a {@code va_list} parameter is a pointer, which {@code vsnprintf} takes as is. Never
     * throws: an exception escaping an upcall would crash the JVM.
     */
    @SuppressWarnings("unused")
    private static int print(int level, MemorySegment format, MemorySegment args) {
        try {
            MemorySegment buf = SCRATCH.get();
            int n = (int) VSNPRINTF.invokeExact(buf, (long) LOG_SCRATCH, format, args);
            if (n <= 0) {
                return 0;
            }
            String text = buf.getString(0);
            StringBuilder collector = COLLECTOR.get();
            if (collector != null) {
                collector.append(text);
                if (n >= LOG_SCRATCH) {
                    collector.append("\n[log truncated at ").append(LOG_SCRATCH).append(" bytes]\n");
                }
            }
            if (LOG.isDebugEnabled()) {
                LOG.debug("libbpf: {}", text.stripTrailing());
            }
            return n;
        } catch (Throwable t) {
            return 0;
        }
    }

    /** A call that may fail with a {@link BpfException}. */
    @FunctionalInterface
    public interface Call<T> {
        T run() throws BpfException;
    }

    /**
     * Runs {@code call} while keeping libbpf's messages on this thread; on failure the kept text is
     * handed to {@code onFailure} (which usually wraps it into the thrown exception).
     */
    public static <T> T collecting(Call<T> call,
            java.util.function.BiFunction<BpfException, String, BpfException> onFailure)
            throws BpfException {
        StringBuilder previous = COLLECTOR.get();
        StringBuilder mine = new StringBuilder();
        COLLECTOR.set(mine);
        try {
            return call.run();
        } catch (BpfException e) {
            throw onFailure.apply(e, mine.toString());
        } finally {
            COLLECTOR.set(previous);
        }
    }

    /** Errno of an int-returning libbpf call: {@code -rc}, or the captured errno for legacy {@code -1}. */
    public static int errnoOf(int rc, MemorySegment errBuffer) {
        if (rc == -1) {
            int e = Libc.errno(errBuffer);
            return e != 0 ? e : 1;
        }
        return -rc;
    }

    /** Wraps a {@link Throwable} from {@code invokeExact} that is not a failure of the call itself. */
    public static IllegalStateException unexpected(String call, Throwable t) {
        return new IllegalStateException(call + ": unexpected failure of the native call", t);
    }
}
