package dev.wisp.wireguard;

import java.net.InetSocketAddress;
import java.util.Optional;

/**
 * Called when a valid handshake initiation names a static key the device has no peer for (after
 * mac1, rate limits and the initiation's own authentication). Returning a config installs that peer
 * and the initiation is answered; empty drops it. Runs on the device's handshake thread: answer
 * quickly (a local lookup), never block on the network.
 */
@FunctionalInterface
public interface UnknownPeerHandler {
    Optional<PeerConfig> onInitiation(Key publicKey, InetSocketAddress source);

    /** The default: unknown peers are dropped, as wireguard-go does. */
    UnknownPeerHandler REJECT = (k, s) -> Optional.empty();
}
