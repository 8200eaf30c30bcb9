package dev.wisp.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A workload for tests: echoes every byte back and, on the client's FIN, finishes echoing and
 * closes its side (half-close aware). {@code reset} mode answers every connection with a TCP RST.
 */
public final class EchoServer implements AutoCloseable {
    private final ServerSocket server;
    private final AtomicLong accepted = new AtomicLong();
    private volatile boolean reset;
    private volatile boolean paused;

    public EchoServer(InetSocketAddress bind) throws IOException {
        server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(bind, 2048);
        Thread.ofVirtual().name("echo-accept").start(this::acceptLoop);
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) server.getLocalSocketAddress();
    }

    public long accepted() {
        return accepted.get();
    }

    /** Every connection from now on is reset after its first byte arrives. */
    public void resetConnections(boolean on) {
        reset = on;
    }

    /** While paused, connections stop reading (a slow reader). */
    public void pause(boolean on) {
        synchronized (this) {
            paused = on;
            notifyAll();
        }
    }

    private synchronized void awaitResume() throws InterruptedException {
        while (paused) {
            wait();
        }
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                accepted.incrementAndGet();
                Thread.ofVirtual().name("echo").start(() -> serve(s));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Socket s) {
        try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
            byte[] buf = new byte[64 * 1024];
            while (true) {
                awaitResume();
                int n = in.read(buf);
                if (n < 0) {
                    break;
                }
                if (reset) {
                    s.setSoLinger(true, 0);
                    return;
                }
                out.write(buf, 0, n);
            }
            s.shutdownOutput();
        } catch (IOException | InterruptedException e) {
            // The peer went away (or the test ended): nothing more to echo.
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
