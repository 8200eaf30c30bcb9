package dev.wisp.wireguard.device;

import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.noise.CookieGenerator;
import dev.wisp.wireguard.noise.Handshake;
import dev.wisp.wireguard.noise.Identity;
import dev.wisp.wireguard.noise.Tai64n;
import java.util.Arrays;
import java.util.concurrent.atomic.LongAdder;

/**
 * A peer's side of the Noise handshake: the handshake state, the preshared key, the cookie that
 * stamps our mac2, and the bookkeeping that limits initiations — the greatest timestamp and the
 * last time one was accepted from the peer (replays and floods), when ours last went out (at most
 * one per REKEY_TIMEOUT), how many retransmissions we made, and whether the receive side already
 * asked for a rekey of the current session.
 *
 * <p>Guarded by the owning peer's monitor: every method asserts it is held.
 */
final class PeerHandshake {
    /** What to do with an authenticated initiation of this peer. */
    enum Admission {
        ACCEPT,
        /** Its timestamp is not newer than one already accepted. */
        REPLAYED,
        /** Another one was accepted less than {@link HandshakeProcessor#INITIATIONS_MIN_INTERVAL} ago. */
        TOO_SOON
    }

    private final Peer owner;
    private final LongAdder dhOperations;
    /** Null while the device has no private key. */
    private Handshake noise;
    /** Copied into each {@link #noise}; replaced (old bytes zeroed) when it changes. */
    private byte[] presharedKey = new byte[32];
    /** Keyed by the peer's public key: replaced when that changes. */
    private CookieGenerator cookies;
    private byte[] lastTimestamp = new byte[12];
    /** When an initiation of the peer was last accepted. */
    private final LastTime accepted = new LastTime();
    /** When our last initiation went out. */
    private final LastTime initiated = new LastTime();
    private int retransmissions;
    private boolean rekeyRequestedOnReceive;

    PeerHandshake(Peer owner, LongAdder dhOperations) {
        this.owner = owner;
        this.dhOperations = dhOperations;
        this.cookies = new CookieGenerator(owner.publicKeyBytes());
    }

    /** The handshake, or null while the device has no private key. */
    Handshake noise() {
        assert Thread.holdsLock(owner);
        return noise;
    }

    /** Starts over with the device's (new) identity, or none; the old handshake is wiped. */
    void useIdentity(Identity id) {
        assert Thread.holdsLock(owner);
        if (noise != null) {
            noise.destroy();
        }
        noise = id == null ? null : new Handshake(id, owner.publicKeyBytes(), presharedKey, dhOperations);
    }

    /**
     * The peer's public key changed: the MAC layer is keyed anew and the handshake starts over with
     * {@code id}. The greatest timestamp stays: the same node's clock goes on.
     */
    void remoteKeyChanged(Identity id) {
        assert Thread.holdsLock(owner);
        cookies = new CookieGenerator(owner.publicKeyBytes());
        useIdentity(id);
    }

    /** Changes the preshared key (handshakes in flight restart); false when it is the same. */
    boolean setPresharedKey(Key psk, Identity id) {
        assert Thread.holdsLock(owner);
        byte[] bytes = psk.bytes();
        if (Arrays.equals(bytes, presharedKey)) {
            return false;
        }
        Arrays.fill(presharedKey, (byte) 0);
        presharedKey = bytes;
        useIdentity(id);
        return true;
    }

    Key presharedKey() {
        assert Thread.holdsLock(owner);
        return Key.of(presharedKey);
    }

    /**
     * Decides on an authenticated initiation with {@code timestamp} at {@code now}; an accepted one
     * becomes the new bar for replays and floods.
     */
    Admission admit(byte[] timestamp, long now) {
        assert Thread.holdsLock(owner);
        if (!Tai64n.after(timestamp, lastTimestamp)) {
            return Admission.REPLAYED;
        }
        if (accepted.within(now, HandshakeProcessor.INITIATIONS_MIN_INTERVAL)) {
            return Admission.TOO_SOON;
        }
        lastTimestamp = timestamp;
        accepted.mark(now);
        return Admission.ACCEPT;
    }

    /**
     * Whether an initiation may go out now: a retransmission always may, a fresh one only when the
     * last went out at least {@code rekeyTimeout} ago (and it restarts the retransmission count).
     */
    boolean mayInitiate(long now, long rekeyTimeout, boolean retransmission) {
        assert Thread.holdsLock(owner);
        if (!retransmission) {
            if (initiated.within(now, rekeyTimeout)) {
                return false;
            }
            retransmissions = 0;
        }
        return true;
    }

    /** An initiation is going out now: stamps its macs. */
    void initiated(byte[] msg, long now) {
        assert Thread.holdsLock(owner);
        initiated.mark(now);
        cookies.stamp(msg, now);
    }

    /** Stamps the macs of a response we send. */
    void stamp(byte[] msg, long now) {
        assert Thread.holdsLock(owner);
        cookies.stamp(msg, now);
    }

    /** Takes the cookie of a reply to one of our messages; false when it does not authenticate. */
    boolean consumeCookieReply(byte[] msg, long now) {
        assert Thread.holdsLock(owner);
        return cookies.consumeReply(msg, now);
    }

    /** One more retransmission is due; true when that is more than {@code max}: give up. */
    boolean retransmissionExhausted(int max) {
        assert Thread.holdsLock(owner);
        return ++retransmissions > max;
    }

    /** Gives up our initiation in flight: its index is released, its state wiped. */
    void abandon(IndexTable indices) {
        assert Thread.holdsLock(owner);
        if (noise != null) {
            if (noise.state() == Handshake.State.INITIATION_CREATED) {
                indices.release(noise.localIndex(), owner);
            }
            noise.wipeState();
        }
    }

    /** A session with the peer is in use: the retransmission count and rekey request start over. */
    void completed() {
        assert Thread.holdsLock(owner);
        retransmissions = 0;
        rekeyRequestedOnReceive = false;
    }

    /** True the first time the receive side asks for a rekey of the current session. */
    boolean requestRekeyOnReceive() {
        assert Thread.holdsLock(owner);
        if (rekeyRequestedOnReceive) {
            return false;
        }
        rekeyRequestedOnReceive = true;
        return true;
    }

    /** Wipes the handshake's ephemeral state (keys zeroed). */
    void wipeState() {
        assert Thread.holdsLock(owner);
        if (noise != null) {
            noise.wipeState();
        }
    }

    /** Wipes everything, the preshared key included (peer removed). */
    void destroy() {
        assert Thread.holdsLock(owner);
        if (noise != null) {
            noise.destroy();
        }
        Arrays.fill(presharedKey, (byte) 0);
    }

    /** When something last happened (clock nanoseconds), if it ever did. */
    private static final class LastTime {
        private long at;
        private boolean ever;

        boolean within(long now, long interval) {
            return ever && now - at < interval;
        }

        void mark(long now) {
            at = now;
            ever = true;
        }
    }
}
