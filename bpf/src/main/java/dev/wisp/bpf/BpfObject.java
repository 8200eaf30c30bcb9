package dev.wisp.bpf;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.internal.LibBpf;
import dev.wisp.bpf.internal.VerifierLog;
import dev.wisp.linux.Errno;
import dev.wisp.linux.Libc;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An eBPF object file (ELF from clang) opened and loaded by libbpf. Maps that declare
 * {@code pinning = LIBBPF_PIN_BY_NAME} are reused from, or pinned to, the pin root given at open:
 * that is how a restarted process finds its state. Closing the object unloads its programs unless a
 * link or pin still holds them.
 *
 * <p>Not thread-safe: open, load and look things up from one thread, then share the maps and
 * programs (which are).
 */
public final class BpfObject implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BpfObject.class);

    private final String name;
    private final Arena arena; // owns the ELF bytes and the open options; freed after bpf_object__close
    private MemorySegment object; // NULL once closed
    private boolean loaded;

    private BpfObject(String name, Arena arena, MemorySegment object) {
        this.name = name;
        this.arena = arena;
        this.object = object;
    }

    /** Opens an object from a class-path resource (e.g. {@code /dev/wisp/bpf/capture.bpf.o}). */
    public static BpfObject openResource(Class<?> anchor, String resource, Path pinRoot) throws BpfException {
        requireNonNull(anchor, "anchor");
        requireNonNull(resource, "resource");
        try (InputStream in = anchor.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalArgumentException("no eBPF object on the class path at " + resource);
            }
            String base = resource.substring(resource.lastIndexOf('/') + 1).replace(".bpf.o", "");
            return open(base, in.readAllBytes(), pinRoot);
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + resource, e);
        }
    }

    /**
     * Opens {@code elf} as object {@code name}; pinned maps live under {@code pinRoot} (null: libbpf's
     * default {@code /sys/fs/bpf}). Nothing reaches the kernel until {@link #load}.
     */
    public static BpfObject open(String name, byte[] elf, Path pinRoot) throws BpfException {
        requireNonNull(name, "name");
        requireNonNull(elf, "elf");
        Arena arena = Arena.ofShared();
        try {
            MemorySegment buf = arena.allocate(elf.length);
            MemorySegment.copy(elf, 0, buf, ValueLayout.JAVA_BYTE, 0, elf.length);
            MemorySegment opts = arena.allocate(LibBpf.OPEN_OPTS_SIZE, 8);
            opts.set(ValueLayout.JAVA_LONG, 0, LibBpf.OPEN_OPTS_SIZE);
            opts.set(ValueLayout.ADDRESS, LibBpf.OPEN_OPTS_OBJECT_NAME, arena.allocateFrom(name));
            if (pinRoot != null) {
                opts.set(ValueLayout.ADDRESS, LibBpf.OPEN_OPTS_PIN_ROOT, arena.allocateFrom(pinRoot.toString()));
            }
            MemorySegment err = Libc.newErrnoBuffer(arena);
            MemorySegment obj = LibBpf.collecting(() -> {
                try {
                    MemorySegment o = (MemorySegment) LibBpf.OBJECT_OPEN_MEM.invokeExact(err, buf, (long) elf.length,
                            opts);
                    if (o.address() == 0) {
                        throw new BpfException("bpf_object__open_mem(" + name + ")", nonZero(Libc.errno(err)));
                    }
                    return o;
                } catch (BpfException e) {
                    throw e;
                } catch (Throwable t) {
                    throw LibBpf.unexpected("bpf_object__open_mem", t);
                }
            }, (e, log) -> withLog(e, log));
            return new BpfObject(name, arena, obj);
        } catch (BpfException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Loads every program (the verifier runs here) and creates or reuses the maps. On failure the
     * exception's message is one line (the refused program and the verifier's reason, or the errno
     * and its hint), the full libbpf output is in {@link BpfException#log()} and logged at debug.
     */
    public void load() throws BpfException {
        MemorySegment obj = live();
        LibBpf.collecting(() -> {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment err = Libc.newErrnoBuffer(a);
                int rc = (int) LibBpf.OBJECT_LOAD.invokeExact(err, obj);
                if (rc < 0) {
                    throw new BpfException("loading eBPF object '" + name + "'", LibBpf.errnoOf(rc, err));
                }
                return null;
            } catch (BpfException e) {
                throw e;
            } catch (Throwable t) {
                throw LibBpf.unexpected("bpf_object__load", t);
            }
        }, (e, log) -> {
            BpfException withCause = VerifierLog.rejection(log)
                    .map(r -> new BpfException("loading eBPF object '" + name + "'", e.errno(),
                            "program '" + r.program() + "' rejected by the verifier: " + r.reason()
                                    + " (verifier log at debug level)",
                            log))
                    .orElseGet(() -> withLog(e, log));
            LOG.error("{}", withCause.getMessage());
            LOG.debug("libbpf output while loading '{}':\n{}", name, log);
            return withCause;
        });
        loaded = true;
    }

    /** The program named as the C function, e.g. {@code wisp_connect4}. */
    public BpfProgram program(String programName) {
        requireNonNull(programName, "programName");
        MemorySegment p = find(LibBpf.FIND_PROGRAM, programName)
                .orElseThrow(() -> new IllegalArgumentException("no program '" + programName + "' in " + name));
        return new BpfProgram(programName, p, this);
    }

    /** The map named as in the C source, viewed through the given codecs; requires {@link #load}. */
    public <K, V> BpfMap<K, V> map(String mapName, Codec<K> keys, Codec<V> values) {
        requireNonNull(mapName, "mapName");
        MemorySegment m = find(LibBpf.FIND_MAP, mapName)
                .orElseThrow(() -> new IllegalArgumentException("no map '" + mapName + "' in " + name));
        requireLoaded();
        try (Arena a = Arena.ofConfined()) {
            int fd = (int) LibBpf.MAP_FD.invokeExact(Libc.newErrnoBuffer(a), m);
            return new BpfMap<>(mapName, fd, false, requireNonNull(keys, "keys"), requireNonNull(values, "values"));
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_map__fd", t);
        }
    }

    public String name() {
        return name;
    }

    void requireLoaded() {
        if (!loaded) {
            throw new IllegalStateException("eBPF object '" + name + "' is not loaded yet");
        }
    }

    private Optional<MemorySegment> find(java.lang.invoke.MethodHandle finder, String what) {
        MemorySegment obj = live();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment r = (MemorySegment) finder.invokeExact(Libc.newErrnoBuffer(a), obj, a.allocateFrom(what));
            return r.address() == 0 ? Optional.empty() : Optional.of(r);
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_object__find", t);
        }
    }

    private MemorySegment live() {
        if (object == null) {
            throw new IllegalStateException("eBPF object '" + name + "' is closed");
        }
        return object;
    }

    private static BpfException withLog(BpfException e, String log) {
        return new BpfException(e.call(), e.errno(), null, log);
    }

    private static int nonZero(int errno) {
        return errno == 0 ? Errno.EINVAL : errno;
    }

    /** Closes the object: programs and maps not held by a link or pin go away. */
    @Override
    public void close() {
        if (object == null) {
            return;
        }
        try (Arena a = Arena.ofConfined()) {
            LibBpf.OBJECT_CLOSE.invokeExact(Libc.newErrnoBuffer(a), object);
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_object__close", t);
        } finally {
            object = null;
            arena.close();
        }
    }
}
