/*
 * Wisp HBONE benchmark load generator and workload (single-file program: `java LoadGen.java MODE ...`).
 *
 *   server ECHO_ADDR SINK_ADDR                 echo server and sink (sink answers the byte count on EOF)
 *   repl                                       one warm JVM for every phase: reads one command per line
 *                                              (the modes below), prints one result line each
 *   throughput TARGET BYTES [socks ADDR]       one stream: upload BYTES, wait for the sink's count
 *   latency TARGET RATE SECONDS SIZE [socks ADDR]  fixed-rate request/response on one connection;
 *                                              latency measured from each request's intended send time
 *                                              (coordinated omission corrected)
 *   connrate TARGET SECONDS WORKERS [socks ADDR]  new connections per second (connect, 1-byte echo, close)
 *   hold TARGET N SECONDS [socks ADDR]         opens N connections (each checked with a 1-byte echo, within
 *                                              SECONDS in all) and keeps them open until `release`
 *   release                                    closes the connections `hold` opened
 *   parallel TARGET STREAMS BYTES [socks ADDR]  STREAMS streams at once, each uploading BYTES (per-stream MiB/s)
 *   platency TARGET STREAMS RATE SECONDS SIZE [socks ADDR]  STREAMS connections at once, each as `latency`
 *                                              at RATE req/s; the percentiles are over all their requests
 *
 * Results are printed as one line of key=value pairs; every mode reports failed=N (a failed stream,
 * request or connection), so that a phase that broke is never read as a slow one.
 *
 * The echo/sink workload and the new-connection load are test-support's EchoSinkLoad (shared with the
 * noisy-neighbour test's load program): run with test-support/target/classes on the class path.
 */
import dev.wisp.testing.EchoSinkLoad;
import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Arrays;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

public class LoadGen {
    static InetSocketAddress addr(String s) {
        int c = s.lastIndexOf(':');
        return new InetSocketAddress(s.substring(0, c), Integer.parseInt(s.substring(c + 1)));
    }

    static InetSocketAddress socks;

    static Socket open(InetSocketAddress target) throws IOException {
        Socket s = new Socket();
        s.setTcpNoDelay(true);
        if (socks == null) {
            s.connect(target, 10_000);
            return s;
        }
        s.connect(socks, 10_000);
        OutputStream out = s.getOutputStream();
        DataInputStream in = new DataInputStream(s.getInputStream());
        byte[] ip = target.getAddress().getAddress();
        byte[] req = new byte[3 + 4 + ip.length + 2];
        req[0] = 5; req[1] = 1; req[2] = 0;
        req[3] = 5; req[4] = 1; req[5] = 0; req[6] = 1;
        System.arraycopy(ip, 0, req, 7, 4);
        req[11] = (byte) (target.getPort() >> 8);
        req[12] = (byte) target.getPort();
        out.write(req);
        byte[] reply = new byte[2 + 10];
        in.readFully(reply);
        if (reply[1] != 0 || reply[3] != 0) {
            s.close();
            throw new IOException("SOCKS5 refused: " + reply[3]);
        }
        return s;
    }

    public static void main(String[] a) throws Exception {
        if (a[0].equals("repl")) {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            System.out.println("ready");
            for (String line; (line = in.readLine()) != null;) {
                run(line.trim().split("\\s+"));
                System.out.flush();
            }
            return;
        }
        run(a);
    }

    static void run(String[] a) throws Exception {
        socks = null;
        for (int i = 0; i < a.length - 1; i++) {
            if (a[i].equals("socks")) {
                socks = addr(a[i + 1]);
            }
        }
        switch (a[0]) {
            case "server" -> server(addr(a[1]), addr(a[2]));
            case "throughput" -> throughput(addr(a[1]), Long.parseLong(a[2]));
            case "latency" -> latency(addr(a[1]), Integer.parseInt(a[2]), Integer.parseInt(a[3]), Integer.parseInt(a[4]));
            case "connrate" -> connrate(addr(a[1]), Integer.parseInt(a[2]), Integer.parseInt(a[3]));
            case "hold" -> hold(addr(a[1]), Integer.parseInt(a[2]), Integer.parseInt(a[3]));
            case "release" -> release();
            case "parallel" -> parallel(addr(a[1]), Integer.parseInt(a[2]), Long.parseLong(a[3]));
            case "platency" -> platency(addr(a[1]), Integer.parseInt(a[2]), Integer.parseInt(a[3]),
                    Integer.parseInt(a[4]), Integer.parseInt(a[5]));
            default -> throw new IllegalArgumentException(a[0]);
        }
    }

    static void server(InetSocketAddress echo, InetSocketAddress sink) throws Exception {
        ServerSocket e = EchoSinkLoad.listen(echo, 4096); // 10,000 connections may be held open
        ServerSocket k = EchoSinkLoad.listen(sink, 128);
        System.out.println("ready");
        EchoSinkLoad.serve(e, k);
    }

    static void throughput(InetSocketAddress target, long bytes) {
        long t0 = System.nanoTime();
        try {
            double secs = upload(target, bytes);
            System.out.printf("bytes=%d seconds=%.3f MiBps=%.1f failed=0%n", bytes, secs, bytes / secs / (1 << 20));
        } catch (IOException | RuntimeException e) {
            System.out.printf("bytes=%d seconds=%.3f MiBps=0 failed=1 error=%s%n", bytes,
                    (System.nanoTime() - t0) / 1e9, e.toString().replace(' ', '_'));
        }
    }

    /** One stream uploading {@code bytes} to the sink; the seconds until the sink's count came back. */
    static double upload(InetSocketAddress target, long bytes) throws IOException {
        long t0 = System.nanoTime();
        try (Socket s = open(target)) {
            byte[] chunk = new byte[256 * 1024];
            OutputStream out = s.getOutputStream();
            for (long left = bytes; left > 0; left -= chunk.length) {
                out.write(chunk, 0, (int) Math.min(chunk.length, left));
            }
            s.shutdownOutput();
            String got = new String(s.getInputStream().readAllBytes());
            if (!got.trim().equals(Long.toString(bytes))) {
                throw new IOException("sink received " + got + " of " + bytes);
            }
            return (System.nanoTime() - t0) / 1e9;
        }
    }

    static void parallel(InetSocketAddress target, int streams, long bytes) throws Exception {
        long t0 = System.nanoTime();
        var results = new java.util.ArrayList<java.util.concurrent.Future<Double>>();
        try (var exec = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < streams; i++) {
                results.add(exec.submit(() -> upload(target, bytes)));
            }
        }
        double wall = (System.nanoTime() - t0) / 1e9;
        double[] mibps = new double[streams];
        int failed = 0;
        String error = "";
        for (int i = 0; i < streams; i++) {
            try {
                mibps[i] = bytes / results.get(i).get() / (1 << 20);
            } catch (java.util.concurrent.ExecutionException e) {
                failed++;
                error = " error=" + e.getCause().toString().replace(' ', '_');
            }
        }
        Arrays.sort(mibps);
        System.out.printf("streams=%d bytes_each=%d seconds=%.3f total_MiBps=%.1f stream_min_MiBps=%.1f "
                + "stream_median_MiBps=%.1f stream_max_MiBps=%.1f failed=%d%s%n", streams, bytes, wall,
                (streams - failed) * bytes / wall / (1 << 20), mibps[0], mibps[streams / 2], mibps[streams - 1],
                failed, error);
    }

    static void latency(InetSocketAddress target, int rate, int seconds, int size) throws Exception {
        EchoSinkLoad.Paced t = timed(target, rate, seconds, size);
        report(t.latencies(), t.latencies().length, rate * seconds, error(t));
    }

    /** One connection: 200 requests to warm up, then RATE requests per second paced by EchoSinkLoad. */
    static EchoSinkLoad.Paced timed(InetSocketAddress target, int rate, int seconds, int size) {
        try (Socket s = open(target)) {
            byte[] b = new byte[size];
            DataInputStream in = new DataInputStream(s.getInputStream());
            for (int i = 0; i < 200; i++) { // warm-up, not measured
                s.getOutputStream().write(b);
                in.readFully(b);
            }
            // The requests not answered are the failed ones; the answered ones are still measured.
            return EchoSinkLoad.paced(s, rate, seconds, size, System.nanoTime() + 10_000_000);
        } catch (IOException e) {
            return EchoSinkLoad.Paced.none(rate * seconds, e);
        }
    }

    static String error(EchoSinkLoad.Paced t) {
        return t.error().isEmpty() ? "" : " error=" + t.error().replace(' ', '_');
    }

    static void report(long[] lat, int done, int asked, String error) {
        if (done == 0) {
            System.out.printf("requests=0 p50_us=0 p99_us=0 p999_us=0 max_us=0 failed=%d%s%n", asked, error);
            return;
        }
        long[] ok = Arrays.copyOf(lat, done);
        Arrays.sort(ok);
        System.out.printf("requests=%d p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f failed=%d%s%n", done,
                ok[done / 2] / 1e3, ok[(int) (done * 0.99)] / 1e3, ok[(int) (done * 0.999)] / 1e3, ok[done - 1] / 1e3,
                asked - done, error);
    }

    static void platency(InetSocketAddress target, int streams, int rate, int seconds, int size) throws Exception {
        var results = new java.util.ArrayList<java.util.concurrent.Future<EchoSinkLoad.Paced>>();
        try (var exec = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < streams; i++) {
                results.add(exec.submit(() -> timed(target, rate, seconds, size)));
            }
        }
        long[] all = new long[streams * rate * seconds];
        int done = 0;
        String error = "";
        for (var f : results) {
            EchoSinkLoad.Paced t = f.get();
            System.arraycopy(t.latencies(), 0, all, done, t.latencies().length);
            done += t.latencies().length;
            error = t.error().isEmpty() ? error : error(t);
        }
        report(all, done, all.length, error);
    }

    static void connrate(InetSocketAddress target, int seconds, int workers) throws Exception {
        AtomicLong done = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        try (var exec = Executors.newFixedThreadPool(workers)) {
            for (int w = 0; w < workers; w++) {
                exec.submit(() -> EchoSinkLoad.connections(() -> open(target), end, done, failed));
            }
        }
        System.out.printf("connections=%d failed=%d per_second=%.0f%n", done.get(), failed.get(),
                done.get() / (double) seconds);
    }

    static final java.util.List<Socket> held = new java.util.ArrayList<>();

    static void hold(InetSocketAddress target, int n, int seconds) {
        long t0 = System.nanoTime();
        long end = t0 + seconds * 1_000_000_000L;
        int failed = 0;
        int tried = 0;
        // Why connections failed, counted by exception and message, with the index of the first one
        // of each kind: a failure is the client's, the agent's or the kernel's, and this tells which.
        var causes = new java.util.TreeMap<String, int[]>();
        for (int i = 0; i < n && System.nanoTime() < end; i++, tried++) {
            try {
                Socket s = open(target);
                held.add(s);
                s.getOutputStream().write(1);
                if (s.getInputStream().read() != 1) {
                    throw new IOException("no echo");
                }
            } catch (IOException e) {
                failed++;
                int index = i;
                causes.computeIfAbsent(e.toString().replace(' ', '_'), k -> new int[] {0, index})[0]++;
            }
        }
        StringBuilder why = new StringBuilder();
        causes.forEach((k, v) -> why.append(why.isEmpty() ? " errors=" : ";").append(k).append('x').append(v[0])
                .append("@").append(v[1]));
        System.out.printf("open=%d failed=%d not_tried=%d seconds=%.1f%s%n", tried - failed, n - tried + failed, n - tried,
                (System.nanoTime() - t0) / 1e9, why);
    }

    static void release() {
        int n = held.size();
        for (Socket s : held) {
            try {
                s.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
        held.clear();
        System.out.printf("closed=%d failed=0%n", n);
    }
}
