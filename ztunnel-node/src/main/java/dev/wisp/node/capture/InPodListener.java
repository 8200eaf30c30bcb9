package dev.wisp.node.capture;

import dev.wisp.linux.NativeException;
import dev.wisp.linux.NetworkNamespace;
import dev.wisp.linux.Sockets;
import dev.wisp.node.proxy.InboundPlaintext;
import dev.wisp.node.proxy.OriginalDestinationResolver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Function;

/**
 * The agent's plaintext inbound (15006) listener inside one pod's network namespace.
 *
 * <p>sk_lookup may only hand a connection to a socket of the namespace it arrives in, so the
 * listening socket must be created there. A socket belongs to the namespace of the thread that
 * called {@code socket(2)}, and Netty creates the server channel on the thread that calls
 * {@code bind}: a fresh platform thread enters the pod's namespace ({@code setns}), binds the
 * listener (the channel is then registered with the agent's acceptor loop, which stays in the
 * node's namespace), and returns to its own namespace before it ends. Connections it accepts live
 * in the pod's namespace; upstream connections to the app are opened by the event loops, in the
 * node's namespace, from a node address (in capture's bypass set, so not captured again).
 *
 * <p>The kernel's sockhash needs the listener's descriptor; with Netty's NIO transport it is not
 * exposed, so it is found in {@code /proc/self/fd} as the listening socket bound to the pod address
 * and port (pod addresses are unique on a node; accepted sockets share the local address but have a
 * peer).
 */
final class InPodListener implements AutoCloseable {
    private final InboundPlaintext inbound;
    final InetSocketAddress address;
    final int fd;

    private InPodListener(InboundPlaintext inbound, InetSocketAddress address, int fd) {
        this.inbound = inbound;
        this.address = address;
        this.fd = fd;
    }

    static InPodListener open(Function<OriginalDestinationResolver, InboundPlaintext> handler, Path netns,
            InetSocketAddress address) throws IOException {
        InboundPlaintext inbound = handler.apply(ch -> Optional.of((InetSocketAddress) ch.localAddress()));
        try {
            InetSocketAddress bound = NetworkNamespace.call(netns, () -> inbound.bind(address));
            return new InPodListener(inbound, bound, listeningFd(bound));
        } catch (IOException | RuntimeException e) {
            inbound.close();
            throw e;
        }
    }

    static int listeningFd(InetSocketAddress bound) throws IOException {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path p : fds) {
                int fd;
                try {
                    fd = Integer.parseInt(p.getFileName().toString());
                    if (!Files.readSymbolicLink(p).toString().startsWith("socket:")) {
                        continue;
                    }
                } catch (NumberFormatException | IOException e) {
                    continue; // closed meanwhile or not a descriptor: not ours
                }
                if (isListener(fd, bound)) {
                    return fd;
                }
            }
        }
        throw new IOException("the listener on " + bound + " has no descriptor in /proc/self/fd");
    }

    private static boolean isListener(int fd, InetSocketAddress bound) {
        try {
            if (!bound.equals(Sockets.localAddress(fd))) {
                return false;
            }
        } catch (NativeException | RuntimeException e) {
            return false;
        }
        try {
            Sockets.peerAddress(fd);
            return false; // connected: an accepted socket, not the listener
        } catch (NativeException e) {
            return true;
        }
    }

    @Override
    public void close() {
        inbound.close();
    }
}
