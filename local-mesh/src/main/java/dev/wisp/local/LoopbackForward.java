package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import dev.wisp.linux.NetworkNamespace;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Forwards a loopback port of this host to a loopback port inside a network namespace, as {@code
 * kubectl port-forward} does for a pod: how a browser on the host reaches the control plane's admin
 * page, which listens on 127.0.0.1 (or ::1) of the underlay namespace only. The far end sees a loopback
 * caller, and only this host's loopback can reach the near end, so nothing is opened wider.
 *
 * <p>Threads: one virtual thread accepts; each connection is copied by two virtual threads, one per
 * direction; when either side ends, both sockets close. {@link #close} stops accepting; open
 * connections end with their far side (the process it forwards to).
 */
public final class LoopbackForward implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(LoopbackForward.class);
    private final ServerSocket listener;
    private final Path netns;
    private final InetSocketAddress target;

    private LoopbackForward(ServerSocket listener, Path netns, InetSocketAddress target) {
        this.listener = listener;
        this.netns = netns;
        this.target = target;
    }

    /**
     * Listens on 127.0.0.1:{@code hostPort} (0: any free port; a busy port falls back to a free one)
     * and forwards each connection to 127.0.0.1:{@code targetPort} in network namespace {@code netns}
     * ({@code /var/run/netns/<netns>}).
     */
    public static LoopbackForward open(String netns, int targetPort, int hostPort) throws IOException {
        return open(netns, new InetSocketAddress(InetAddress.getLoopbackAddress(), targetPort), hostPort);
    }

    /** As above, forwarding to {@code target} (a loopback address of either family) in {@code netns}. */
    public static LoopbackForward open(String netns, InetSocketAddress target, int hostPort) throws IOException {
        requireNonNull(netns, "netns");
        ServerSocket s;
        try {
            s = new ServerSocket(hostPort, 50, InetAddress.getLoopbackAddress());
        } catch (IOException busy) {
            s = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        }
        LoopbackForward f = new LoopbackForward(s, Path.of("/var/run/netns", netns), target);
        Thread.ofVirtual().name("wisp-forward-" + netns).start(f::accept);
        return f;
    }

    /** The host port it listens on. */
    public int port() {
        return listener.getLocalPort();
    }

    private void accept() {
        while (!listener.isClosed()) {
            Socket near;
            try {
                near = listener.accept();
            } catch (IOException e) {
                return; // closed
            }
            try {
                // A socket belongs to the namespace of the thread that creates it.
                Socket far = NetworkNamespace.call(netns, () -> new Socket(target.getAddress(), target
                        .getPort()));
                pipe(near, far);
                pipe(far, near);
            } catch (Exception e) {
                LOG.warn("cannot forward to {} in {}: {}", target, netns, e.toString());
                closeQuietly(near);
            }
        }
    }

    private static void pipe(Socket from, Socket to) {
        Thread.ofVirtual().start(() -> {
            try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                in.transferTo(out);
            } catch (IOException e) {
                // One side went away: both close below.
            } finally {
                closeQuietly(from);
                closeQuietly(to);
            }
        });
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // nothing left to do
        }
    }

    @Override
    public void close() throws IOException {
        listener.close();
    }
}
