package dev.wisp.node.proxy;

import io.netty.channel.Channel;
import java.net.InetSocketAddress;
import java.util.Optional;

/**
 * Finds where a captured connection was going before capture redirected it to the agent (port
 * 15001 outbound, 15006 inbound). The eBPF capture fills this from its map keyed by the socket's
 * 4-tuple; tests use {@link #fixed}.
 */
@FunctionalInterface
public interface OriginalDestinationResolver {
    /** The original destination of {@code accepted}, or empty when it is unknown (the connection is closed). */
    Optional<InetSocketAddress> originalDestination(Channel accepted);

    /** Every connection was going to {@code destination}. */
    static OriginalDestinationResolver fixed(InetSocketAddress destination) {
        return ch -> Optional.of(destination);
    }

    /** No capture: every connection is refused. */
    static OriginalDestinationResolver none() {
        return ch -> Optional.empty();
    }
}
