package dev.wisp.e2e;

import dev.wisp.testing.EchoSinkLoad;
import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The programs of the noisy-neighbour test and benchmark ({@link NoisyNeighbourE2eTest}), run in
 * pods, mesh-unaware (every connection they make is captured). Modes:
 * <ul>
 * <li>{@code server ECHO_PORT SINK_PORT}: echoes every byte on ECHO_PORT, reads and discards on
 * SINK_PORT ({@link EchoSinkLoad#serve}); prints {@code listening};
 * <li>{@code repl}: prints {@code ready}, then runs one command per line and prints its result as
 * one line of {@code key=value} pairs:
 * <ul>
 * <li>{@code quiet HOST PORT RATE SECONDS SIZE CONN_RATE}: the quiet pod's load, two schedules at
 * once for SECONDS: SIZE-byte request/responses at RATE per second on one connection, and
 * CONN_RATE new connections per second, each one SIZE-byte request/response. Both measured from
 * each request's intended start (coordinated omission corrected: a stall delays the requests
 * behind it, and they count it); {@code rr_*} and {@code conn_*} percentiles in µs and failures;
 * <li>{@code flood HOST PORT SECONDS THREADS}: THREADS threads connect, send a byte, read its echo
 * and close, as fast as they can; connections made and failed (refused, reset, no echo);
 * <li>{@code push HOST PORT SECONDS STREAMS}: STREAMS connections writing to the sink as fast as
 * they can; MiB/s and failed streams;
 * <li>{@code idle SECONDS}: nothing, for SECONDS.
 * </ul>
 * </ul>
 */
public final class NoisyLoad {
    private NoisyLoad() {}

    public static void main(String[] a) throws Exception {
        if (a[0].equals("server")) {
            server(Integer.parseInt(a[1]), Integer.parseInt(a[2]));
            return;
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        System.out.println("ready");
        System.out.flush();
        for (String line; (line = in.readLine()) != null;) {
            System.out.println(run(line.trim().split("\\s+")));
            System.out.flush();
        }
    }

    static String run(String[] c) throws Exception {
        return switch (c[0]) {
            case "quiet" -> quiet(c[1], Integer.parseInt(c[2]), Integer.parseInt(c[3]), Integer.parseInt(c[4]),
                    Integer.parseInt(c[5]), Integer.parseInt(c[6]));
            case "flood" -> flood(c[1], Integer.parseInt(c[2]), Integer.parseInt(c[3]), Integer.parseInt(c[4]));
            case "push" -> push(c[1], Integer.parseInt(c[2]), Integer.parseInt(c[3]), Integer.parseInt(c[4]));
            case "idle" -> {
                Thread.sleep(Integer.parseInt(c[1]) * 1000L);
                yield "idle=" + c[1];
            }
            default -> "error=unknown_command_" + c[0];
        };
    }

    // ---- the server pod

    static void server(int echoPort, int sinkPort) throws IOException {
        ServerSocket echo = EchoSinkLoad.listen(new InetSocketAddress(echoPort), 4096);
        ServerSocket sink = EchoSinkLoad.listen(new InetSocketAddress(sinkPort), 4096);
        System.out.println("listening");
        System.out.flush();
        EchoSinkLoad.serve(echo, sink);
    }

    // ---- the quiet pod

    static String quiet(String host, int port, int rate, int seconds, int size, int connRate) throws Exception {
        InetSocketAddress target = new InetSocketAddress(host, port);
        long start = System.nanoTime() + 50_000_000;
        try (var exec = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<EchoSinkLoad.Paced> rr = exec.submit(() -> requests(target, rate, seconds, size, start));
            Future<EchoSinkLoad.Paced> conn = exec.submit(() -> connections(target, connRate, seconds, size, start));
            return render("rr", rr.get()) + " " + render("conn", conn.get());
        }
    }

    /** The {@code prefix_*} fields of one load's result: requests answered, percentiles in µs, failures. */
    static String render(String prefix, EchoSinkLoad.Paced t) {
        long[] l = t.latencies().clone();
        Arrays.sort(l);
        return String.format(Locale.ROOT, "%1$s_requests=%2$d %1$s_p50_us=%3$.0f %1$s_p99_us=%4$.0f "
                + "%1$s_p999_us=%5$.0f %1$s_max_us=%6$.0f %1$s_failed=%7$d%8$s", prefix, l.length,
                at(l, 0.5), at(l, 0.99), at(l, 0.999), at(l, 1), t.failed(),
                t.error().isEmpty() ? "" : " " + prefix + "_error=" + t.error().replace(' ', '_'));
    }

    private static double at(long[] sorted, double q) {
        return sorted.length == 0 ? 0 : sorted[Math.min(sorted.length - 1, (int) (sorted.length * q))] / 1e3;
    }

    /** RATE requests per second on one connection; a failure ends it, the rest count as failed. */
    private static EchoSinkLoad.Paced requests(InetSocketAddress target, int rate, int seconds, int size,
            long start) {
        try (Socket s = connect(target)) {
            return EchoSinkLoad.paced(s, rate, seconds, size, start);
        } catch (IOException e) {
            return EchoSinkLoad.Paced.none(rate * seconds, e);
        }
    }

    /** CONN_RATE new connections per second, each started at its intended time on a thread of its own. */
    private static EchoSinkLoad.Paced connections(InetSocketAddress target, int connRate, int seconds, int size,
            long start)
            throws Exception {
        int n = connRate * seconds;
        long interval = 1_000_000_000L / connRate;
        List<Future<Long>> calls = new ArrayList<>();
        try (var exec = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < n; i++) {
                long intended = start + i * interval;
                EchoSinkLoad.waitUntil(intended);
                calls.add(exec.submit(() -> {
                    try (Socket s = connect(target)) {
                        s.getOutputStream().write(new byte[size]);
                        new DataInputStream(s.getInputStream()).readFully(new byte[size]);
                    }
                    return System.nanoTime() - intended;
                }));
            }
        }
        long[] lat = new long[n];
        int done = 0;
        String error = "";
        for (Future<Long> f : calls) {
            try {
                lat[done] = f.get();
                done++;
            } catch (java.util.concurrent.ExecutionException e) {
                error = e.getCause().toString();
            }
        }
        return new EchoSinkLoad.Paced(Arrays.copyOf(lat, done), n - done, error);
    }

    private static Socket connect(InetSocketAddress target) throws IOException {
        Socket s = new Socket();
        s.setTcpNoDelay(true);
        s.setSoTimeout(10_000);
        s.connect(target, 10_000);
        return s;
    }

    // ---- the noisy pod

    static String flood(String host, int port, int seconds, int threads) throws Exception {
        InetSocketAddress target = new InetSocketAddress(host, port);
        AtomicLong ok = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        onThreads(threads, seconds, end -> EchoSinkLoad.connections(() -> connect(target), end, ok, failed));
        return String.format(Locale.ROOT, "connections=%d failed=%d per_second=%.0f attempts_per_second=%.0f",
                ok.get(), failed.get(), ok.get() / (double) seconds, (ok.get() + failed.get()) / (double) seconds);
    }

    /** {@code threads} platform threads each running {@code body} with the end ({@link System#nanoTime}) of SECONDS. */
    private static void onThreads(int threads, int seconds, java.util.function.LongConsumer body) {
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        try (var exec = Executors.newFixedThreadPool(threads)) {
            for (int t = 0; t < threads; t++) {
                exec.submit(() -> body.accept(end));
            }
        }
    }

    static String push(String host, int port, int seconds, int streams) throws Exception {
        InetSocketAddress target = new InetSocketAddress(host, port);
        AtomicLong bytes = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        onThreads(streams, seconds, end -> {
            byte[] chunk = new byte[64 * 1024];
            try (Socket s = connect(target)) {
                OutputStream out = s.getOutputStream();
                while (System.nanoTime() < end) {
                    out.write(chunk);
                    bytes.addAndGet(chunk.length);
                }
            } catch (IOException e) {
                failed.incrementAndGet();
            }
        });
        return String.format(Locale.ROOT, "bytes=%d MiBps=%.1f failed=%d", bytes.get(),
                bytes.get() / (double) seconds / (1 << 20), failed.get());
    }
}
