package dev.wisp.e2e;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The benchmark's client, run inside pod A by {@link CaptureBench}: an application that knows
 * nothing of the mesh. Prints {@code key=value} lines: connection setup latency (connect, one
 * 64-byte request, its 64-byte response, close) and request latency (64-byte round trips on one
 * open connection), in microseconds, and this process's CPU time per connection.
 */
public final class CaptureBenchClient {
    private static final int PAYLOAD = 64;

    private CaptureBenchClient() {}

    public static void main(String[] args) throws Exception {
        InetSocketAddress target = new InetSocketAddress(args[0], Integer.parseInt(args[1]));
        int connections = Integer.parseInt(args[2]);
        int requests = Integer.parseInt(args[3]);
        byte[] req = new byte[PAYLOAD];
        byte[] resp = new byte[PAYLOAD];

        for (int i = 0; i < connections / 5; i++) {
            setup(target, req, resp);
        }
        long cpu0 = cpuMillis();
        long[] setup = new long[connections];
        for (int i = 0; i < connections; i++) {
            setup[i] = setup(target, req, resp);
        }
        long cpuSetup = cpuMillis() - cpu0;

        long[] rtt = new long[requests];
        try (Socket s = new Socket()) {
            s.setTcpNoDelay(true);
            s.connect(target, 5000);
            OutputStream out = s.getOutputStream();
            InputStream in = s.getInputStream();
            for (int i = 0; i < requests / 5; i++) {
                roundTrip(out, in, req, resp);
            }
            for (int i = 0; i < requests; i++) {
                long t0 = System.nanoTime();
                roundTrip(out, in, req, resp);
                rtt[i] = System.nanoTime() - t0;
            }
        }
        print("setup", setup);
        print("request", rtt);
        System.out.printf("cpu_us_per_connection=%.1f%n", cpuSetup * 1000.0 / connections);
    }

    private static long setup(InetSocketAddress target, byte[] req, byte[] resp) throws IOException {
        long t0 = System.nanoTime();
        try (Socket s = new Socket()) {
            s.setTcpNoDelay(true);
            s.connect(target, 5000);
            roundTrip(s.getOutputStream(), s.getInputStream(), req, resp);
        }
        return System.nanoTime() - t0;
    }

    private static void roundTrip(OutputStream out, InputStream in, byte[] req, byte[] resp) throws IOException {
        out.write(req);
        out.flush();
        int got = 0;
        while (got < resp.length) {
            int n = in.read(resp, got, resp.length - got);
            if (n < 0) {
                throw new IOException("server closed after " + got + " bytes");
            }
            got += n;
        }
    }

    private static void print(String name, long[] nanos) {
        long[] sorted = nanos.clone();
        Arrays.sort(sorted);
        System.out.printf("%s_p50_us=%.1f%n", name, sorted[sorted.length / 2] / 1000.0);
        System.out.printf("%s_p99_us=%.1f%n", name, sorted[(int) (sorted.length * 0.99)] / 1000.0);
        System.out.printf("%s_mean_us=%.1f%n", name, Arrays.stream(nanos).average().orElse(0) / 1000.0);
    }

    /** utime + stime of this process, from /proc/self/stat (clock ticks of 10 ms). */
    private static long cpuMillis() throws IOException {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 10;
    }
}
