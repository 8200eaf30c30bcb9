package dev.wisp.e2e;

import dev.wisp.testing.PodServer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * A mesh-unaware client for pods, speaking {@link PodServer}'s protocol: one TCP connection per
 * call, sends SIZE bytes, half-closes, reads the answer. Modes:
 * <ul>
 * <li>{@code repl}: reads {@code call HOST PORT SIZE} lines from stdin, prints {@code ok <answer>}
 * or {@code failed <reason>} for each;
 * <li>{@code loop HOST PORT SIZE INTERVAL_MS}: calls every INTERVAL_MS (for at most ten minutes), one line per call,
 * {@code <epoch ms> ok <answer>} or {@code <epoch ms> failed <reason>};
 * <li>{@code hold HOST PORT}: opens one connection, sends five bytes without half-closing (the
 * server answers only after the half-close, so the connection stays open), prints {@code open}, then
 * {@code <epoch ms> closed <how>} when the connection ends (EOF or reset), or after ten minutes.
 * </ul>
 */
public final class PodClient {
    private static final Duration LOOP_LIMIT = Duration.ofMinutes(10);

    private PodClient() {}

    public static void main(String[] args) throws Exception {
        if (args[0].equals("repl")) {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            System.out.println("ready");
            System.out.flush();
            for (String line; (line = in.readLine()) != null;) {
                String[] f = line.trim().split("\\s+");
                System.out.println(f[0].equals("http")
                        ? http(f[1], Integer.parseInt(f[2]))
                        : call(f[1], Integer.parseInt(f[2]), Integer.parseInt(f[3])));
                System.out.flush();
            }
        } else if (args[0].equals("hold")) {
            System.out.println(hold(args[1], Integer.parseInt(args[2])));
        } else {
            String host = args[1];
            int port = Integer.parseInt(args[2]);
            int size = Integer.parseInt(args[3]);
            long interval = Long.parseLong(args[4]);
            // Paced by a timer: each call starts INTERVAL_MS after the previous one started, or at
            // once when that call took longer; the loop ends by itself after LOOP_LIMIT if the
            // test that started it never stops it.
            ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
            timer.execute(new Runnable() {
                @Override
                public void run() {
                    long start = System.currentTimeMillis();
                    String r = call(host, port, size);
                    System.out.println(start + " " + r);
                    System.out.flush();
                    timer.schedule(this, Math.max(0, interval - (System.currentTimeMillis() - start)),
                            TimeUnit.MILLISECONDS);
                }
            });
            if (!timer.awaitTermination(LOOP_LIMIT.toMillis(), TimeUnit.MILLISECONDS)) {
                timer.shutdownNow();
            }
        }
    }

    /** Holds a connection open until the other end closes it; prints {@code open} once connected. */
    static String hold(String host, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), 2000);
            s.setSoTimeout((int) LOOP_LIMIT.toMillis());
            s.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
            System.out.println("open");
            System.out.flush();
            int n = s.getInputStream().read();
            return System.currentTimeMillis() + " closed " + (n < 0 ? "eof" : "unexpected byte " + n);
        } catch (IOException e) {
            return System.currentTimeMillis() + " closed " + e;
        }
    }

    /**
     * One HTTP/1.0 GET on a new connection: {@code ok <body>} ({@link dev.wisp.testing.PodServer}
     * answers {@code hello from <name>; you are <the address it saw>}) or {@code failed <reason>}.
     */
    static String http(String host, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), 2000);
            s.setSoTimeout(3000);
            s.getOutputStream().write(("GET / HTTP/1.0\r\nHost: " + host + "\r\n\r\n").getBytes(
                    StandardCharsets.US_ASCII));
            String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            int body = answer.indexOf("\r\n\r\n");
            return answer.startsWith("HTTP/1.0 200 ") && body > 0
                    ? "ok " + answer.substring(body + 4).strip()
                    : "failed answer '" + answer + "'";
        } catch (IOException e) {
            return "failed " + e;
        }
    }

    static String call(String host, int port, int size) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), 2000);
            s.setSoTimeout(3000);
            byte[] body = new byte[size];
            Arrays.fill(body, (byte) 'x');
            s.getOutputStream().write(body);
            s.shutdownOutput();
            String answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            return answer.endsWith("\n") ? "ok " + answer.strip() : "failed answer '" + answer + "'";
        } catch (IOException e) {
            return "failed " + e;
        }
    }
}
