package dev.wisp.node.telemetry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.awaitility.Awaitility.await;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The process series carry this JVM's real figures, checked against sources other than the
 * binder's own: {@code ps} for resident size, {@code /proc/self/limits} for the fd limit, files
 * opened by the test for the fd count, work done by the test for CPU time.
 */
class ProcessMetricsTest {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);

    /** The sum of every sample of {@code series} (one sample for the process gauges). */
    private double value(String series) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + "(?:\\{[^}]*\\})? ([0-9.eE+-]+)$")
                .matcher(registry.scrape());
        double sum = 0;
        boolean found = false;
        while (m.find()) {
            found = true;
            sum += Double.parseDouble(m.group(1));
        }
        assertThat(found).as(series + " in the scrape").isTrue();
        return sum;
    }

    @Test
    void residentAndVirtualMemoryMatchPs() throws Exception {
        try (ProcessMetrics ignored = ProcessMetrics.bind(registry)) {
            Process ps = new ProcessBuilder("ps", "-o", "rss=,vsz=", "-p", Long.toString(ProcessHandle.current().pid()))
                    .start();
            String[] kb = new String(ps.getInputStream().readAllBytes()).trim().split("\\s+");
            assertThat(ps.waitFor()).isZero();
            double rss = value("process_resident_memory_bytes");
            assertThat(rss).as("resident").isGreaterThan(16 * 1024 * 1024)
                    .isCloseTo(Long.parseLong(kb[0]) * 1024.0, within(64 * 1024 * 1024.0));
            assertThat(value("process_virtual_memory_bytes")).as("virtual").isGreaterThan(rss)
                    .isCloseTo(Long.parseLong(kb[1]) * 1024.0, within(256 * 1024 * 1024.0));
        }
    }

    @Test
    void openFdsFollowFilesOpenedAndMaxIsTheSoftLimit() throws IOException {
        try (ProcessMetrics ignored = ProcessMetrics.bind(registry)) {
            double before = value("process_open_fds");
            List<FileChannel> open = new ArrayList<>();
            Path f = Files.createTempFile("fds", ".tmp");
            try {
                for (int i = 0; i < 40; i++) {
                    open.add(FileChannel.open(f));
                }
                assertThat(value("process_open_fds")).isGreaterThanOrEqualTo(before + 40);
            } finally {
                for (FileChannel c : open) {
                    c.close();
                }
                Files.delete(f);
            }
            String limits = Files.readString(Path.of("/proc/self/limits"));
            Matcher m = Pattern.compile("(?m)^Max open files\\s+(\\d+)").matcher(limits);
            assertThat(m.find()).isTrue();
            assertThat(value("process_max_fds")).isEqualTo(Double.parseDouble(m.group(1)));
        }
    }

    @Test
    void cpuSecondsGrowWithWorkAndStartTimeIsThisJvms() {
        try (ProcessMetrics ignored = ProcessMetrics.bind(registry)) {
            double cpu = value("process_cpu_seconds_total");
            assertThat(cpu).isPositive();
            await().atMost(Duration.ofSeconds(30)).until(() -> {
                burn();
                return value("process_cpu_seconds_total") >= cpu + 0.05;
            });
            double start = value("process_start_time_seconds");
            long startMillis = ProcessHandle.current().info().startInstant().orElseThrow().toEpochMilli();
            assertThat(start).isCloseTo(startMillis / 1e3, within(5.0));
        }
    }

    @Test
    void jvmSeriesArePresentWithRealValues() {
        try (ProcessMetrics ignored = ProcessMetrics.bind(registry)) {
            assertThat(value("jvm_memory_used_bytes")).isPositive();
            assertThat(value("jvm_threads_live_threads")).isGreaterThan(1);
            assertThat(value("jvm_classes_loaded_classes")).isGreaterThan(1000);
            System.gc();
            await().atMost(Duration.ofSeconds(10))
                    .until(() -> registry.scrape().contains("jvm_gc_pause_seconds_count"));
            assertThat(value("jvm_gc_pause_seconds_count")).isGreaterThanOrEqualTo(1);
        }
    }

    /**
     * Heap after GC follows what the test keeps alive across a full collection: 64 MiB held raise
     * it by at least that much, and it falls again once they are dropped.
     */
    @Test
    void heapAfterGcFollowsTheLiveSetAndNettyDirectMemoryIsReported() {
        try (ProcessMetrics ignored = ProcessMetrics.bind(registry)) {
            System.gc();
            double base = value("jvm_heap_after_gc_bytes");
            assertThat(base).isPositive();
            byte[][] held = new byte[64][];
            for (int i = 0; i < held.length; i++) {
                held[i] = new byte[1024 * 1024];
            }
            System.gc();
            assertThat(value("jvm_heap_after_gc_bytes")).isGreaterThanOrEqualTo(base + 60 * 1024 * 1024);
            assertThat(held[63]).hasSize(1024 * 1024);
            held = null;
            System.gc();
            assertThat(value("jvm_heap_after_gc_bytes")).isLessThan(base + 32 * 1024 * 1024);
            assertThat(value("netty_direct_memory_used_bytes")).isGreaterThanOrEqualTo(-1);
        }
    }

    @Test
    void statusFieldReadsKilobytesAndRefusesJunk() {
        String status = "Name:\tjava\nVmSize:\t 3456789 kB\nVmRSS:\t   123456 kB\nVmSwap:\tjunk kB\n";
        assertThat(ProcessMetrics.statusField(status, "VmRSS")).isEqualTo(OptionalLong.of(123456));
        assertThat(ProcessMetrics.statusField(status, "VmSize")).isEqualTo(OptionalLong.of(3456789));
        assertThat(ProcessMetrics.statusField(status, "VmSwap")).isEmpty();
        assertThat(ProcessMetrics.statusField(status, "VmHWM")).isEmpty();
        assertThat(ProcessMetrics.statusField(status, "VmRS")).isEmpty();
    }

    /** Bounded CPU work the JIT cannot remove. */
    private static long burn() {
        long x = 0;
        for (int i = 0; i < 20_000_000; i++) {
            x = x * 31 + i;
        }
        if (x == 42) {
            System.out.println(x);
        }
        return x;
    }
}
