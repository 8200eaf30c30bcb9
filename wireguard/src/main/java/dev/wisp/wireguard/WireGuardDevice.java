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
