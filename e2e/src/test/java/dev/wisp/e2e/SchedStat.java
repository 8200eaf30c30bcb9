package dev.wisp.e2e;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * What the kernel's scheduler did for one process, per thread, from {@code /proc/<pid>/task/<tid>/schedstat}
 * (time on a CPU, time runnable but waiting on a run queue, in ns) and {@code comm} (its name): taken
 * before and after a phase of {@link NoisyNeighbourE2eTest}, the difference tells whether a process was
 * short of CPU (it waited on the run queue) or had the CPU and was busy (it ran).
 *
 * @param threads by thread ID: its name, run and wait ns since it started
 */
record SchedStat(Map<Long, Thread> threads, long processCpuTicks) {
    record Thread(String name, long runNs, long waitNs, long slices) {}

    /** A reading of every thread of {@code pid} now; threads that end while it is read are left out. */
    static SchedStat of(long pid) {
        Map<Long, Thread> threads = new HashMap<>();
        Path tasks = Path.of("/proc", Long.toString(pid), "task");
        try (Stream<Path> s = Files.list(tasks)) {
            for (Path task : s.toList()) {
                try {
                    String[] f = Files.readString(task.resolve("schedstat")).trim().split("\\s+");
                    threads.put(Long.parseLong(task.getFileName().toString()), new Thread(Files.readString(task
                            .resolve("comm")).trim(), Long.parseLong(f[0]), Long.parseLong(f[1]),
                            Long.parseLong(f[2])));
                } catch (NoSuchFileException e) {
                    // the thread ended between the listing and the read
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the scheduler statistics of process " + pid + ": " + e, e);
        }
        return new SchedStat(Map.copyOf(threads), cpuTicks(pid));
    }

    /**
     * The process's user and system time in clock ticks (/proc/PID/stat fields 14 and 15), which, unlike
     * the threads' figures, includes threads that have ended (the noisy pod's flood threads live for
     * one phase).
     */
    static long cpuTicks(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(f[11]) + Long.parseLong(f[12]);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/" + pid + "/stat: " + e, e);
        }
    }

    /**
     * Since {@code before}, over {@code seconds}: {@code PREFIX_cpu_ms} (the process, ended threads
     * included, from clock ticks of 10 ms) and {@code PREFIX_wait_ms} (its live threads), in ms per second;
     * the same for the thread that ran most ({@code PREFIX_top_cpu_ms}, {@code PREFIX_top_wait_ms},
     * {@code PREFIX_top}: its name) and its mean wait on a run queue each time it was scheduled
     * ({@code PREFIX_top_delay_us}).
     */
    Map<String, String> since(SchedStat before, double seconds, String prefix) {
        long run = 0;
        long wait = 0;
        Thread top = null;
        long topRun = -1;
        long topWait = 0;
        long topSlices = 0;
        for (var e : threads.entrySet()) {
            Thread was = before.threads.getOrDefault(e.getKey(), new Thread("", 0, 0, 0));
            long r = e.getValue().runNs() - was.runNs();
            long w = e.getValue().waitNs() - was.waitNs();
            wait += w;
            if (r > topRun) {
                topRun = r;
                topWait = w;
                topSlices = e.getValue().slices() - was.slices();
                top = e.getValue();
            }
        }
        run = (processCpuTicks - before.processCpuTicks) * 10_000_000L;
        Map<String, String> m = new HashMap<>();
        m.put(prefix + "_top_delay_us", String.format(java.util.Locale.ROOT, "%.0f", topSlices == 0
                ? 0.0
                : topWait / 1e3 / topSlices));
        m.put(prefix + "_cpu_ms", perSecond(run, seconds));
        m.put(prefix + "_wait_ms", perSecond(wait, seconds));
        m.put(prefix + "_top", top == null ? "-" : top.name());
        m.put(prefix + "_top_cpu_ms", perSecond(Math.max(0, topRun), seconds));
        m.put(prefix + "_top_wait_ms", perSecond(topWait, seconds));
        return m;
    }

    private static String perSecond(long ns, double seconds) {
        return String.format(java.util.Locale.ROOT, "%.1f", ns / 1e6 / seconds);
    }

    /** {@code p} if it is a JVM, else its first descendant that is (a pod's {@code ip netns exec} forks it). */
    static long jvm(ProcessHandle p) {
        if (isJava(p)) {
            return p.pid();
        }
        return p.descendants().filter(SchedStat::isJava).findFirst().map(ProcessHandle::pid).orElseThrow(
                () -> new IllegalStateException("no JVM in process " + p.pid() + " " + p.info() + " or below"));
    }

    private static boolean isJava(ProcessHandle p) {
        return p.info().command().map(c -> c.endsWith("/java")).orElse(false);
    }
}
