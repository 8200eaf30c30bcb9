package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.util.Optional;

/**
 * Where the agent's connection to a workload of its node comes from. By default from the agent's
 * own address; with capture, from the client's address (the source {@link SourceAddress} decided),
 * so that the application sees who called it (capture's {@code TransparentUpstream}).
 */
@FunctionalInterface
public interface UpstreamSource {
    /** Always the agent's own address. */
    UpstreamSource NODE = (source, destination) -> Optional.empty();

    /**
     * An unconnected socket, bound to the source asked for, and what to run once its connection
     * succeeded or failed (what was set up for its opening can go then).
     */
    record Upstream(SocketChannel channel, Runnable settled) {
        public Upstream {
            requireNonNull(channel, "channel");
            requireNonNull(settled, "settled");
        }
    }

    /**
     * A socket bound to {@code source} (any port) from which {@code destination} can be reached, or
     * empty: the agent connects from its own address. Never throws: a socket that cannot be made is
     * an empty answer, counted and logged by the implementation.
     */
    Optional<Upstream> open(InetAddress source, InetSocketAddress destination);
}
