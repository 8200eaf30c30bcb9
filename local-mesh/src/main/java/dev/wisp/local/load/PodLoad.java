package dev.wisp.local.load;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The load program that runs inside a pod of a local mesh (a plain, mesh-unaware TCP program; the
 * mesh captures it), one mode per process:
 *
 * <pre>
 *   serve PORT...                      echo server: every byte read is written back (a virtual thread per connection)
 *   hold HOST PORT N PERIOD_MS         opens N connections (at most 64 opening at once), each checked with a
 *                                      16-byte echo, then echoes again on each one every PERIOD_MS (first one at a
 *                                      random offset), so that a connection the mesh dropped is noticed; never reopens
 *   churn HOST PORT PER_SECOND         opens PER_SECOND connections a second, each: connect, one echo, close
 * </pre>
 *
 * Output, one line each, to stdout: {@code ready} (or {@code listening}) once started;
 * {@code status T open=… opened=… failed=… echoes=…} every {@link #STATUS_EVERY_MS} ms and once more
 * at the end; {@code failed T REASON} for every failure (T: epoch milliseconds). A failure is an
 * open, echo or close that did not complete within {@link #TIMEOUT_MS}, or an echo that came back
 * different. The process runs until its stdin says {@code stop} (or closes); then it closes its
 * connections (not failures), prints the last status and exits.
 */
public final class PodLoad {
    /** How long a connect or an echo may take before it counts as failed: generous, the machine is shared. */
    static final int TIMEOUT_MS = 30_000;
    static final long STATUS_EVERY_MS = 5_000;
    static final int OPENING_AT_ONCE = 64;
    private static final int MESSAGE = 16;

    private final PrintStream out;
    private final AtomicLong open = new AtomicLong();
    private final AtomicLong opened = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private final AtomicLong echoes = new AtomicLong();
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private volatile boolean stopping;

    private PodLoad(PrintStream out) {
        this.out = out;
    }

    /**
     * The command that runs this program with {@code args} on this JVM's binary and class path,
     * with a heap and threads sized for 10,000 connections (C1 only, serial GC, as the mesh's JVMs).
     */
    public static List<String> command(String... args) {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty(
                        "java.class.path"),
                PodLoad.class.getName()));
        cmd.addAll(Arrays.asList(args));
        return cmd;
    }

    public static void main(String[] args) throws Exception {
        PodLoad load = new PodLoad(new PrintStream(System.out, true, StandardCharsets.US_ASCII));
        switch (args.length == 0 ? "" : args[0]) {
            case "serve" -> load.serve(Arrays.stream(args).skip(1).mapToInt(Integer::parseInt).toArray());
            case "hold" -> load.hold(new InetSocketAddress(args[1], Integer.parseInt(args[2])), Integer.parseInt(
                    args[3]), Long.parseLong(args[4]));
            case "churn" -> load.churn(new InetSocketAddress(args[1], Integer.parseInt(args[2])), Integer.parseInt(
                    args[3]));
            default -> {
                System.err.println(
                        "usage: PodLoad serve PORT... | hold HOST PORT N PERIOD_MS | churn HOST PORT PER_SECOND");
                System.exit(2);
            }
        }
    }

    private void serve(int[] ports) throws IOException, InterruptedException {
        for (int port : ports) {
            ServerSocket server = new ServerSocket();
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(port), 4096);
            Thread.ofPlatform().daemon().start(() -> accept(server));
        }
        out.println("listening");
        awaitStop();
    }

    private static void accept(ServerSocket server) {
        while (true) {
            try {
                Socket s = server.accept();
                Thread.ofVirtual().start(() -> echo(s));
            } catch (IOException e) {
                return;
            }
        }
    }

    private static void echo(Socket s) {
        try (s) {
            InputStream in = s.getInputStream();
            OutputStream o = s.getOutputStream();
            byte[] buf = new byte[4096];
            for (int n; (n = in.read(buf)) > 0;) {
                o.write(buf, 0, n);
            }
        } catch (IOException e) {
            // the peer went away: nothing to count on this side
        }
    }

    private void hold(InetSocketAddress target, int n, long periodMs) throws Exception {
        out.println("ready");
        startStatus();
        Semaphore opening = new Semaphore(OPENING_AT_ONCE);
        Thread.ofPlatform().daemon().start(() -> {
            for (int i = 0; i < n && !stopping; i++) {
                opening.acquireUninterruptibly();
                Thread.ofVirtual().start(() -> holdOne(target, periodMs, opening));
            }
        });
        awaitStop();
    }

    private void holdOne(InetSocketAddress target, long periodMs, Semaphore opening) {
        Socket s = null;
        boolean counted = false;
        try {
            try {
                s = connect(target);
                opened.incrementAndGet();
                open.incrementAndGet();
                counted = true;
            } finally {
                opening.release();
            }
            Thread.sleep(ThreadLocalRandom.current().nextLong(periodMs));
            while (!stopping) {
                echoOnce(s);
                Thread.sleep(periodMs);
            }
        } catch (IOException e) {
            fail("hold " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            if (counted) {
                open.decrementAndGet();
            }
            close(s);
        }
    }

    private void churn(InetSocketAddress target, int perSecond) throws Exception {
        out.println("ready");
        startStatus();
        Thread.ofPlatform().daemon().start(() -> {
            long interval = TimeUnit.SECONDS.toNanos(1) / perSecond;
            long next = System.nanoTime();
            while (!stopping) {
                next += interval;
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    try {
                        TimeUnit.NANOSECONDS.sleep(wait);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                Thread.ofVirtual().start(() -> churnOne(target));
            }
        });
        awaitStop();
    }

    private void churnOne(InetSocketAddress target) {
        Socket s = null;
        try {
            s = connect(target);
            opened.incrementAndGet();
            s.close();
        } catch (IOException e) {
            fail("churn " + e);
        } finally {
            close(s);
        }
    }

    /** Connects, checks one echo, and keeps the socket where {@link #awaitStop} closes it. */
    private Socket connect(InetSocketAddress target) throws IOException {
        Socket s = new Socket();
        sockets.add(s);
        try {
            s.setSoTimeout(TIMEOUT_MS);
            s.setTcpNoDelay(true);
            s.connect(target, TIMEOUT_MS);
            echoOnce(s);
            return s;
        } catch (IOException e) {
            close(s);
            throw e;
        }
    }

    private void echoOnce(Socket s) throws IOException {
        byte[] msg = new byte[MESSAGE];
        ThreadLocalRandom.current().nextBytes(msg);
        s.getOutputStream().write(msg);
        byte[] back = s.getInputStream().readNBytes(MESSAGE);
        if (!Arrays.equals(msg, back)) {
            throw new IOException("echo came back as " + back.length + " different bytes");
        }
        echoes.incrementAndGet();
    }

    private void fail(String reason) {
        if (stopping) {
            return; // our own close at the end
        }
        failed.incrementAndGet();
        out.println("failed " + System.currentTimeMillis() + " " + reason.replace('\n', ' '));
    }

    private void close(Socket s) {
        if (s != null) {
            sockets.remove(s);
            try {
                s.close();
            } catch (IOException e) {
                // closing is best effort
            }
        }
    }

    private void startStatus() {
        Thread.ofPlatform().daemon().start(() -> {
            while (!stopping) {
                status();
                try {
                    Thread.sleep(STATUS_EVERY_MS);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
    }

    private void status() {
        out.println("status " + System.currentTimeMillis() + " open=" + open.get() + " opened=" + opened.get()
                + " failed=" + failed.get() + " echoes=" + echoes.get());
    }

    /** Blocks until stdin says {@code stop} or closes; then closes every connection and prints the last status. */
    private void awaitStop() throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        for (String l; (l = in.readLine()) != null && !l.trim().equals("stop");) {
            // only "stop" means anything
        }
        status();
        stopping = true;
        for (Socket s : sockets) {
            close(s);
        }
        out.println("stopped");
        System.exit(0);
    }
}
