package dev.wisp.local.load;

import dev.wisp.local.LocalMesh;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Samples every node agent of a {@link LocalMesh} at a fixed period and appends one CSV row per agent
 * to a results file ({@link Sample#HEADER}): resident memory, open fds and threads from
 * {@code /proc/<pid>} (the kernel's figures), heap after the last GC and direct memory from the
 * agent's {@code /metrics} (the JVM's: {@code jvm_heap_after_gc_bytes},
 * {@code jvm_buffer_memory_used_bytes{id="direct"}}, {@code netty_direct_memory_used_bytes}). Rows are
 * written as they are taken, so a run cut short keeps what it sampled.
 */
public final class AgentSampler implements AutoCloseable {
    private static final Pattern DIRECT = Pattern
            .compile("(?m)^jvm_buffer_memory_used_bytes\\{[^}]*id=\"direct\"[^}]*\\} (\\S+)$");
    private final LocalMesh mesh;
    private final Path file;
    private final long startMs;
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final Thread thread;
    /** Counted down by {@link #close}; the sampler waits on it between rounds, so a sample in progress is never interrupted. */
    private final CountDownLatch stop = new CountDownLatch(1);

    /**
     * One agent's figures at one time; {@code t} is seconds since the sampler started, memory in
     * bytes; NaN (written empty) where a figure could not be read.
     */
    public record Sample(double t, String node, long pid, double rss, double heapAfterGc, double direct,
            double nettyDirect, double fds, double threads) {
        public static final String HEADER = "time_s,node,pid,rss_bytes,heap_after_gc_bytes,direct_bytes,netty_direct_bytes,fds,threads";

        String csv() {
            return String.format(Locale.ROOT, "%.1f,%s,%d,%s,%s,%s,%s,%s,%s", t, node, pid, num(rss), num(heapAfterGc),
                    num(direct), num(nettyDirect), num(fds), num(threads));
        }

        private static String num(double v) {
            return Double.isNaN(v) ? "" : String.format(Locale.ROOT, "%.0f", v);
        }

        /** A row as {@link #csv} wrote it; lines that are not rows (comments, the header) are empty. */
        static java.util.Optional<Sample> parse(String line) {
            String[] f = line.split(",", -1);
            if (line.startsWith("#") || f.length != 9 || f[0].equals("time_s")) {
                return java.util.Optional.empty();
            }
            return java.util.Optional.of(new Sample(Double.parseDouble(f[0]), f[1], Long.parseLong(f[2]), d(f[3]), d(
                    f[4]), d(f[5]), d(f[6]), d(f[7]), d(f[8])));
        }

        private static double d(String s) {
            return s.isEmpty() ? Double.NaN : Double.parseDouble(s);
        }
    }

    /** Every sample row of a results file, in order. */
    public static List<Sample> read(Path file) throws IOException {
        try (Stream<String> lines = Files.lines(file)) {
            return lines.map(Sample::parse).flatMap(java.util.Optional::stream).toList();
        }
    }

    /**
     * Starts sampling {@code mesh}'s agents every {@code every} into {@code file} (its
     * {@link Sample#HEADER} line is appended first); the first samples are taken at once.
     */
    public AgentSampler(LocalMesh mesh, Path file, Duration every) throws IOException {
        this.mesh = mesh;
        this.file = file;
        this.startMs = System.currentTimeMillis();
        append(Sample.HEADER);
        this.thread = Thread.ofPlatform().daemon().name("agent-sampler").start(() -> {
            long next = System.currentTimeMillis();
            try {
                do {
                    sampleAll();
                    next += every.toMillis();
                } while (!stop.await(Math.max(0, next - System.currentTimeMillis()),
                        TimeUnit.MILLISECONDS));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    /** Seconds since this sampler started: the time axis of its rows. */
    public double elapsed() {
        return (System.currentTimeMillis() - startMs) / 1000.0;
    }

    /** The epoch milliseconds at which the time axis starts. */
    public long startMillis() {
        return startMs;
    }

    private void sampleAll() {
        List<String> rows = new ArrayList<>();
        for (var n : mesh.cluster().nodes()) {
            rows.add(sample(n.name()).csv());
        }
        try {
            append(String.join("\n", rows));
        } catch (IOException e) {
            System.err.println("agent sampler: cannot write " + file + ": " + e.getMessage());
        }
    }

    /** {@code node}'s agent now (NaN figures when it is not running). */
    public Sample sample(String node) {
        double t = elapsed();
        long pid = mesh.agentProcess(node).map(AgentSampler::javaPid).orElse(-1L);
        String metrics = "";
        try {
            metrics = metrics(mesh, node);
        } catch (IOException e) {
            // figures from /metrics stay NaN
        }
        Matcher direct = DIRECT.matcher(metrics);
        return new Sample(t, node, pid, status(pid, "VmRSS") * 1024, metric(metrics, "jvm_heap_after_gc_bytes"),
                direct.find() ? Double.parseDouble(direct.group(1)) : Double.NaN, metric(metrics,
                        "netty_direct_memory_used_bytes"),
                fds(pid), status(pid, "Threads"));
    }

    /** {@code node}'s agent's Prometheus scrape, from the host ({@link LocalMesh#metricsUrl}). */
    public static String metrics(LocalMesh mesh, String node) throws IOException {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(mesh.metricsUrl(node))).timeout(Duration.ofSeconds(10))
                    .build(), HttpResponse.BodyHandlers.ofString()).body();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }

    /** The JVM itself: the agent's process, or its first descendant named java when it is a wrapper. */
    private static long javaPid(Process p) {
        ProcessHandle h = p.toHandle();
        if (comm(h.pid()).equals("java")) {
            return h.pid();
        }
        return h.descendants().filter(d -> comm(d.pid()).equals("java")).findFirst().map(ProcessHandle::pid).orElse(
                h.pid());
    }

    private static String comm(long pid) {
        try {
            return Files.readString(Path.of("/proc/" + pid + "/comm")).trim();
        } catch (IOException e) {
            return "";
        }
    }

    /** A number field of {@code /proc/<pid>/status} ({@code VmRSS} in kB, {@code Threads}). */
    private static double status(long pid, String field) {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (l.startsWith(field + ":")) {
                    return Double.parseDouble(l.substring(field.length() + 1).trim().split("\\s+")[0]);
                }
            }
        } catch (IOException | RuntimeException e) {
            // gone
        }
        return Double.NaN;
    }

    private static double fds(long pid) {
        try (Stream<Path> s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return s.count();
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
    }

    /** The sum of the samples of {@code series} in a Prometheus text scrape; NaN when absent. */
    static double metric(String scrape, String series) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + "(?:\\{[^}]*\\})? (\\S+)$").matcher(scrape);
        double sum = 0;
        boolean found = false;
        while (m.find()) {
            found = true;
            sum += Double.parseDouble(m.group(1));
        }
        return found ? sum : Double.NaN;
    }

    /** Appends {@code line} to the results file. */
    public synchronized void append(String line) throws IOException {
        Files.writeString(file, line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
    }

    @Override
    public void close() {
        // No interrupt: one that lands during a scrape would write a row of NaNs for a running agent.
        stop.countDown();
        try {
            thread.join(15_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
