package dev.wisp.e2e;

import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.testing.Netns;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.time.Duration;

/**
 * Sockets of the test JVM made in a node's network namespace, for a gRPC client that calls the control plane
 * as that node: the control plane takes a node's credential only from the node's own addresses, and gRPC opens
 * its sockets on threads of its own, so entering the namespace around a call is not enough.
 */
final class NodeSockets {
    /** One event loop for every such client of this JVM (daemon threads: nothing to close). */
    @SuppressWarnings("deprecation")
    private static final NioEventLoopGroup LOOP = new NioEventLoopGroup(1, Thread.ofPlatform().daemon().name(
            "node-sockets-", 0).factory());

    private NodeSockets() {}

    /** Each socket made in network namespace {@code netns} (a name under /var/run/netns). */
    static ControlPlaneClient.SocketSource in(String netns) {
        return new ControlPlaneClient.SocketSource(LOOP, () -> {
            try {
                return Netns.call(netns, NioSocketChannel::new, Duration.ofSeconds(20));
            } catch (Exception e) {
                throw new IllegalStateException("cannot make a socket in " + netns + ": " + e.getMessage(), e);
            }
        });
    }
}
