package dev.wisp.bpf;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.internal.LibBpf;
import dev.wisp.linux.Errno;
import dev.wisp.linux.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads a {@code BPF_MAP_TYPE_RINGBUF} map on a platform thread of its own (named
 * {@code wisp-ringbuf-<map>}) and hands each record to a consumer on that thread. The record's
 * bytes are copied out before the consumer runs, so it may keep them. A consumer that throws is
 * logged and counted ({@link #consumerFailures()}), never propagated into libbpf: an exception
 * escaping the upcall would crash the JVM. {@link #close()} stops the thread within one poll
 * interval and frees everything.
 */
public final class RingBuffer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RingBuffer.class);
    private static final int POLL_MILLIS = 100;
    private static final MethodHandle ON_SAMPLE;

    static {
        try {
            ON_SAMPLE = MethodHandles.lookup().findVirtual(RingBuffer.class, "onSample",
                    MethodType.methodType(int.class, MemorySegment.class, MemorySegment.class, long.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final String name;
    private final Consumer<ByteBuffer> consumer; // called on the poll thread only
    private final Arena arena; // owns the upcall stub; closed after ring_buffer__free
    private final MemorySegment ring;
    private final Thread thread;
    private final AtomicLong failures = new AtomicLong();
    private final AtomicLong records = new AtomicLong();
    private volatile boolean running = true;

    private RingBuffer(BpfMap<?, ?> map, Consumer<ByteBuffer> consumer) throws BpfException {
        this.name = map.name();
        this.consumer = consumer;
        this.arena = Arena.ofShared();
        try {
            MemorySegment stub = Linker.nativeLinker().upcallStub(ON_SAMPLE.bindTo(this),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                            ValueLayout.JAVA_LONG),
                    arena);
            MemorySegment err = Libc.newErrnoBuffer(arena);
            MemorySegment r = (MemorySegment) LibBpf.RING_BUFFER_NEW.invokeExact(err, map.fd(), stub,
                    MemorySegment.NULL, MemorySegment.NULL);
            if (r.address() == 0) {
                throw new BpfException("ring_buffer__new(" + name + ")", Libc.errno(err));
            }
            this.ring = r;
        } catch (BpfException | RuntimeException e) {
            arena.close();
            throw e;
        } catch (Throwable t) {
            arena.close();
            throw LibBpf.unexpected("ring_buffer__new", t);
        }
        this.thread = Thread.ofPlatform().name("wisp-ringbuf-" + name).daemon().unstarted(this::pollLoop);
    }

    /** Starts polling {@code map}; {@code consumer} receives each record (little-endian view). */
    public static RingBuffer start(BpfMap<?, ?> map, Consumer<ByteBuffer> consumer) throws BpfException {
        RingBuffer rb = new RingBuffer(requireNonNull(map, "map"), requireNonNull(consumer, "consumer"));
        rb.thread.start();
        return rb;
    }

    private void pollLoop() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(a);
            while (running) {
                int rc = (int) LibBpf.RING_BUFFER_POLL.invokeExact(err, ring, POLL_MILLIS);
                if (rc < 0 && LibBpf.errnoOf(rc, err) != Errno.EINTR) {
                    LOG.error("ring_buffer__poll({}) failed with errno {}; flow events stop", name,
                            LibBpf.errnoOf(rc, err));
                    return;
                }
            }
        } catch (Throwable t) {
            LOG.error("ring buffer {} poll thread failed; flow events stop", name, t);
        }
    }

    @SuppressWarnings("unused")
    private int onSample(MemorySegment ctx, MemorySegment data, long size) {
        try {
            byte[] copy = data.reinterpret(size).toArray(ValueLayout.JAVA_BYTE);
            records.incrementAndGet();
            consumer.accept(ByteBuffer.wrap(copy).order(ByteOrder.LITTLE_ENDIAN));
        } catch (Throwable t) {
            failures.incrementAndGet();
            try {
                LOG.warn("ring buffer {} consumer failed on a record of {} bytes", name, size, t);
            } catch (Throwable ignored) {
                // Nothing may escape an upcall, not even a failure to log.
                failures.incrementAndGet();
            }
        }
        return 0;
    }

    /** Records delivered so far. */
    public long records() {
        return records.get();
    }

    /** Records whose consumer threw. */
    public long consumerFailures() {
        return failures.get();
    }

    @Override
    public void close() {
        if (!running) {
            return;
        }
        running = false;
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try (Arena a = Arena.ofConfined()) {
            LibBpf.RING_BUFFER_FREE.invokeExact(Libc.newErrnoBuffer(a), ring);
        } catch (Throwable t) {
            throw LibBpf.unexpected("ring_buffer__free", t);
        } finally {
            arena.close();
        }
    }
}
