package dev.wisp.wireguard;

import java.io.IOException;
import java.util.List;

/**
 * A running WireGuard interface: a TUN device, a UDP socket and the protocol engine between them.
 * This is the API the node agent uses; the UAPI socket that {@code wg(8)} speaks drives the same
 * methods. Thread-safe. {@link #close} removes the TUN interface and wipes all key material.
 *
 * <p>Create one with {@link WireGuard#builder}.
 */
public interface WireGuardDevice extends AutoCloseable {
    /** The interface name (e.g. {@code wg0}). */
    String name();

    /** Sets the private key (null clears it); all sessions restart. */
    void setPrivateKey(Key privateKey);

    /** The private key, or null when none is set. Never log it. */
    Key privateKey();

    /** The public key, or null when no private key is set. */
    Key publicKey();

    /**
     * Key rotation, first and last step: sets (null removes and wipes) a second private key whose
     * public key handshakes are answered to, never initiated with. Sessions are kept.
     *
     * @throws IllegalArgumentException when it is the private key, or no private key is set
     */
    void setSecondaryKey(Key privateKey);

    /** The secondary key's public key, or null. Never the private one. */
    Key secondaryPublicKey();

    /**
     * Key rotation, the switch: the secondary key becomes the private key and the private key the
     * secondary one; sessions are kept and a handshake with every peer with an endpoint starts.
     *
     * @throws IllegalStateException when there is no secondary key
     */
    void swapKeys();

    /**
     * A peer's node rotated its key: the peer {@code from} becomes {@code to}, keeping its sessions,
     * endpoint, allowed IPs and counters. False when there is no peer {@code from}.
     */
    boolean changePeerKey(Key from, Key to);

    /** For each peer with a completed handshake, our public key in its last handshake. */
    java.util.Map<Key, Key> handshakeKeys();

    /** Rebinds the UDP socket to {@code port} (0 = any free port). */
    void setListenPort(int port) throws IOException;

    int listenPort();

    /** Sets the firewall mark of outgoing UDP packets (0 = none). */
    void setFwmark(int mark) throws IOException;

    int fwmark();

    /** Adds the peer or updates it with {@code wg set} semantics. */
    void upsertPeer(PeerConfig peer);

    /** Removes the peer and wipes its sessions; false when there was none. */
    boolean removePeer(Key publicKey);

    void removeAllPeers();

    /** The peers as {@code wg show} would list them. */
    List<PeerStatus> peers();

    /** A peer's preshared key (all zeros when none), or null for an unknown peer. */
    Key presharedKey(Key peer);

    DeviceStats stats();

    /** Replaces the hook called for initiations from unknown static keys. */
    void setUnknownPeerHandler(UnknownPeerHandler handler);

    @Override
    void close();
}
