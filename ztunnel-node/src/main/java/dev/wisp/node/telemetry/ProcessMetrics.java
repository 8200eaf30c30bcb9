package dev.wisp.node.telemetry;

import static java.util.Objects.requireNonNull;

import com.sun.management.UnixOperatingSystemMXBean;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import com.sun.management.GcInfo;
import io.netty.util.internal.PlatformDependent;
import java.io.IOException;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.lang.management.MemoryUsage;
import java.lang.management.ManagementFactory;
import java.lang.management.OperatingSystemMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;

/**
 * The process's own series on the agent's {@code /metrics}, under the names Prometheus's client
 * libraries (and ztunnel) use, so that a node agent's footprint is read the same way as any other
 * process's: {@code process_resident_memory_bytes}, {@code process_virtual_memory_bytes},
 * {@code process_open_fds}, {@code process_max_fds}, {@code process_cpu_seconds_total},
 * {@code process_start_time_seconds}; and the JVM's memory pools, buffer pools (direct memory), GC
 * pauses, threads and classes through Micrometer's binders ({@code jvm_memory_used_bytes},
 * {@code jvm_buffer_memory_used_bytes}, {@code jvm_gc_pause_seconds}, {@code jvm_threads_live_threads},
 * {@code jvm_classes_loaded_classes}, …); and two of our own for leak hunting:
 * {@code jvm_heap_after_gc_bytes} (heap in use right after the most recent collection, young or
 * old: the live set a leak grows) and {@code netty_direct_memory_used_bytes} (direct memory Netty
 * allocates without a {@code ByteBuffer} cleaner, which the JVM's {@code direct} buffer pool does not
 * count; -1 when Netty does not track it).
 *
 * <p>Resident and virtual size come from {@code /proc/self/status} ({@code VmRSS}, {@code VmSize}):
 * the JVM has no accessor for resident size. Where that file does not exist (not Linux), the two
 * gauges are left out rather than reported as zero. Values are read at scrape time, on the scraping
 * thread; nothing here is on the data path.
 *
 * <p>Closing stops the GC binder's notification listeners; the meters stay in the registry.
 */
public final class ProcessMetrics implements AutoCloseable {
    static final Path STATUS = Path.of("/proc/self/status");
    private final JvmGcMetrics gc = new JvmGcMetrics();

    private ProcessMetrics() {}

    /** Registers the process and JVM series on {@code registry}. */
    public static ProcessMetrics bind(MeterRegistry registry) {
        requireNonNull(registry, "registry");
        ProcessMetrics m = new ProcessMetrics();
        OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (Files.isReadable(STATUS)) {
            Gauge.builder("process.resident.memory.bytes", () -> statusBytes("VmRSS"))
                    .description("Resident memory size in bytes (VmRSS)").register(registry);
            Gauge.builder("process.virtual.memory.bytes", () -> statusBytes("VmSize"))
                    .description("Virtual memory size in bytes (VmSize)").register(registry);
        }
        if (os instanceof UnixOperatingSystemMXBean unix) {
            Gauge.builder("process.open.fds", unix, UnixOperatingSystemMXBean::getOpenFileDescriptorCount)
                    .description("Number of open file descriptors").register(registry);
            Gauge.builder("process.max.fds", unix, UnixOperatingSystemMXBean::getMaxFileDescriptorCount)
                    .description("Maximum number of open file descriptors").register(registry);
        }
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            FunctionCounter.builder("process.cpu.seconds", sun, x -> x.getProcessCpuTime() / 1e9)
                    .description("Total user and system CPU time spent in seconds").register(registry);
        }
        Gauge.builder("process.start.time.seconds", () -> ManagementFactory.getRuntimeMXBean().getStartTime() / 1e3)
                .description("Start time of the process since the Unix epoch in seconds").register(registry);
        Gauge.builder("jvm.heap.after.gc", ProcessMetrics::heapAfterLastGc).baseUnit("bytes")
                .description("Heap in use right after the most recent garbage collection").register(registry);
        Gauge.builder("netty.direct.memory.used", PlatformDependent::usedDirectMemory).baseUnit("bytes")
                .description("Direct memory Netty allocated without a cleaner (-1: not tracked)").register(registry);
        new JvmMemoryMetrics().bindTo(registry);
        m.gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        return m;
    }

    /**
     * The heap pools' usage after the collection that ended last (of every collector's last one);
     * NaN before the first collection.
     */
    static double heapAfterLastGc() {
        GcInfo last = null;
        for (GarbageCollectorMXBean b : ManagementFactory.getGarbageCollectorMXBeans()) {
            if (b instanceof com.sun.management.GarbageCollectorMXBean sun) {
                GcInfo info = sun.getLastGcInfo();
                if (info != null && (last == null || info.getEndTime() > last.getEndTime())) {
                    last = info;
                }
            }
        }
        if (last == null) {
            return Double.NaN;
        }
        long used = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            MemoryUsage after = pool.getType() == MemoryType.HEAP
                    ? last.getMemoryUsageAfterGc().get(pool.getName())
                    : null;
            used += after == null ? 0 : after.getUsed();
        }
        return used;
    }

    /** A {@code kB} field of {@code /proc/self/status} in bytes; NaN when it cannot be read. */
    private static double statusBytes(String field) {
        try {
            OptionalLong kb = statusField(Files.readString(STATUS), field);
            return kb.isPresent() ? kb.getAsLong() * 1024.0 : Double.NaN;
        } catch (IOException e) {
            return Double.NaN;
        }
    }

    /**
     * The value of {@code field} in {@code /proc/<pid>/status} text ({@code VmRSS:    1234 kB}), in
     * the file's unit (kB); empty when the field is missing or not a number.
     */
    static OptionalLong statusField(String status, String field) {
        for (String line : status.split("\n")) {
            if (line.startsWith(field + ":")) {
                String[] parts = line.substring(field.length() + 1).trim().split("\\s+");
                try {
                    return OptionalLong.of(Long.parseLong(parts[0]));
                } catch (NumberFormatException e) {
                    return OptionalLong.empty();
                }
            }
        }
        return OptionalLong.empty();
    }

    @Override
    public void close() {
        gc.close();
    }
}
