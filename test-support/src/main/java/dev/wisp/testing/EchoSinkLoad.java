package dev.wisp.testing;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the load programs share, the benchmark's ({@code bench/hbone/LoadGen.java}, run with this
 * module's classes on its class path) and the noisy-neighbour test's ({@code NoisyLoad} in e2e): the
 * workload, an echo port and a sink port; the new-connection load against its echo port; and the
 * pacer of fixed-rate loads, with latencies measured from each request's intended start
 * (coordinated omission corrected: a stall delays the requests behind it, and they count it). JDK
 * only, so that a single-file program can use it.
 */
public final class EchoSinkLoad {
    private EchoSinkLoad() {}

    /** Opens a client connection to the target (directly, or through a proxy). */
    @FunctionalInterface
    public interface Dial {
        Socket open() throws IOException;
    }

    /** A listening socket on {@code at} (address reuse on), with room for {@code backlog} connections. */
    public static ServerSocket listen(InetSocketAddress at, int backlog) throws IOException {
        ServerSocket s = new ServerSocket();
        s.setReuseAddress(true);
        s.bind(at, backlog);
        return s;
    }

    /**
     * Serves {@code sink} on a virtual thread and {@code echo} on this one until it closes. Echo:
     * every byte back. Sink: reads and discards; on the client's end of stream answers the count of
     * bytes it read (decimal ASCII). Both then end their side; a connection per virtual thread.
     */
    public static void serve(ServerSocket echo, ServerSocket sink) {
        Thread.ofVirtual().start(() -> accept(sink, true));
        accept(echo, false);
    }

    private static void accept(ServerSocket ss, boolean sink) {
        while (true) {
            try {
                Socket s = ss.accept();
                s.setTcpNoDelay(true);
                Thread.ofVirtual().start(() -> connection(s, sink));
            } catch (IOException x) {
                return;
            }
        }
    }

    private static void connection(Socket s, boolean sink) {
        try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
            byte[] buf = new byte[sink ? 256 * 1024 : 16 * 1024]; // echo: small, 10,000 may be held open
            long total = 0;
            for (int n; (n = in.read(buf)) >= 0;) {
                total += n;
                if (!sink) {
                    out.write(buf, 0, n);
                }
            }
            if (sink) {
                out.write(Long.toString(total).getBytes());
            }
            s.shutdownOutput();
        } catch (IOException x) {
            // peer gone
        }
    }

    /**
     * New connections to an echo port until {@code end} ({@link System#nanoTime}): each connects,
     * sends one byte, reads its echo and closes, counted in {@code made}; one that is refused, reset
     * or not echoed is counted in {@code failed}.
     */
    public static void connections(Dial dial, long end, AtomicLong made, AtomicLong failed) {
        while (System.nanoTime() < end) {
            try (Socket s = dial.open()) {
                s.getOutputStream().write(1);
                if (s.getInputStream().read() != 1) {
                    throw new IOException("no echo");
                }
                made.incrementAndGet();
            } catch (IOException e) {
                failed.incrementAndGet();
            }
        }
    }

    /**
     * One paced load's outcome.
     *
     * @param latencies of the requests answered, in ns from each one's intended start
     * @param failed the requests not answered
     * @param error the failure that ended the load (empty if none)
     */
    public record Paced(long[] latencies, int failed, String error) {
        /** Every one of {@code requests} failed, before the first was sent. */
        public static Paced none(int requests, Exception cause) {
            return new Paced(new long[0], requests, cause.toString());
        }
    }

    /**
     * {@code rate} {@code size}-byte requests per second for {@code seconds} on the echo connection
     * {@code s}, request i at {@code start + i / rate} ({@link System#nanoTime}), each waiting for
     * its {@code size}-byte answer. A failure ends the load; the requests not sent count as failed.
     */
    public static Paced paced(Socket s, int rate, int seconds, int size, long start) {
        int n = rate * seconds;
        long interval = 1_000_000_000L / rate;
        long[] lat = new long[n];
        int done = 0;
        String error = "";
        try {
            OutputStream out = s.getOutputStream();
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] req = new byte[size];
            byte[] resp = new byte[size];
            for (; done < n; done++) {
                long intended = start + done * interval;
                waitUntil(intended);
                out.write(req);
                in.readFully(resp);
                lat[done] = System.nanoTime() - intended;
            }
        } catch (IOException e) {
            error = e.toString();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            error = e.toString();
        }
        return new Paced(Arrays.copyOf(lat, done), n - done, error);
    }

    /**
     * The pacer: returns at {@code nanoTime} ({@link System#nanoTime}), sleeping while more than
     * 0.2 ms remain and spinning the rest, so that a request starts within microseconds of its time.
     */
    public static void waitUntil(long nanoTime) throws InterruptedException {
        for (long wait; (wait = nanoTime - System.nanoTime()) > 0;) {
            if (wait > 200_000) {
                Thread.sleep(0, (int) Math.min(wait - 100_000, 999_999));
            } else {
                Thread.onSpinWait();
            }
        }
    }
}
