package dev.wisp.wireguard;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Optional;

/**
 * The device's hook for just-in-time peers. {@link #onInitiation} is called when a valid handshake
 * initiation names a static key the device has no peer for (after mac1, rate limits and the
 * initiation's own authentication): returning a config installs that peer and the initiation is
 * answered; empty drops it. {@link #onPacketTo} is called when a packet from the TUN side has a
 * destination that no peer's allowed IPs contain: returning a config installs that peer and the
 * packet is sent to it if its allowed IPs now contain the destination; empty drops the packet.
 * Both run on the device's threads (handshake, TUN readers): answer quickly (a local lookup), never
 * block on the network.
 */
@FunctionalInterface
public interface UnknownPeerHandler {
    Optional<PeerConfig> onInitiation(Key publicKey, InetSocketAddress source);

    /** A packet for {@code destination} found no peer; the default installs none. */
    default Optional<PeerConfig> onPacketTo(InetAddress destination) {
        return Optional.empty();
    }

    /** The default: unknown peers are dropped, as wireguard-go does. */
    UnknownPeerHandler REJECT = (k, s) -> Optional.empty();
}
