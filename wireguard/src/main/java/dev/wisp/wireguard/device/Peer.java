package dev.wisp.wireguard.device;

import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.noise.CookieGenerator;
import dev.wisp.wireguard.noise.Handshake;
import dev.wisp.wireguard.noise.Keypair;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.concurrent.atomic.LongAdder;

/**
 * One configured peer's state. Lock discipline: the peer's monitor guards the handshake, the cookie
 * generator, keypair rotation, the staged-packet queue and the handshake bookkeeping. The data path
 * reads the volatile keypair references and endpoint without locking and updates the timer
 * deadlines with plain volatile writes (a lost race only moves a timer by one packet).
 */
final class Peer {
    static final int MAX_STAGED = 128;

    final Key publicKey;
    final byte[] publicKeyBytes;
    /** Guarded by this. Null while the device has no private key. */
    Handshake handshake;
    /** Guarded by this. */
    final CookieGenerator cookies;
    /** Guarded by this. */
    byte[] presharedKey = new byte[32];

    volatile InetSocketAddress endpoint;
    /**
     * Serialises taking send counters with queueing into {@link #outLane}, so that counters of one
     * keypair leave in increasing order.
     */
    final Object sendLock = new Object();
    /** With a pipeline: this peer's ordered outbound and inbound lanes (created lazily, guarded by this). */
    volatile OrderedPipeline.Lane outLane;
    volatile OrderedPipeline.Lane inLane;
    /** Set when the peer leaves the device (guarded by this): no new lanes. */
    boolean removed;
    volatile Keypair current;
    volatile Keypair previous;
    volatile Keypair next;

    final LongAdder txBytes = new LongAdder();
    final LongAdder rxBytes = new LongAdder();
    volatile Instant lastHandshake;
    volatile int persistentKeepaliveSeconds;

    /** Guarded by this: plaintext packets waiting for a session. */
    final ArrayDeque<byte[]> staged = new ArrayDeque<>();
    /** Guarded by this: greatest TAI64N timestamp accepted from this peer. */
    byte[] lastTimestamp = new byte[12];
    /** Guarded by this. */
    long lastInitiationConsumedNanos;
    /** Guarded by this. */
    boolean initiationConsumedEver;
    /** Guarded by this. */
    long lastInitiationSentNanos;
    /** Guarded by this. */
    boolean initiationSentEver;
    /** Guarded by this. */
    int handshakeAttempts;
    /** Set when a receive-side rekey was requested for the current session (guarded by this). */
    boolean rekeyRequestedOnReceive;

    // Timer deadlines in clock nanoseconds; 0 = not armed.
    volatile long retransmitDeadline;
    volatile long keepaliveDeadline;
    volatile long newHandshakeDeadline;
    volatile long zeroKeysDeadline;
    volatile long persistentKeepaliveDeadline;

    Peer(Key publicKey) {
        this.publicKey = publicKey;
        this.publicKeyBytes = publicKey.bytes();
        this.cookies = new CookieGenerator(publicKeyBytes);
    }

    /** Wipes every session and the handshake (guarded by this). */
    void wipeSessions() {
        for (Keypair k : new Keypair[]{current, previous, next}) {
            if (k != null) {
                k.wipe();
            }
        }
        current = null;
        previous = null;
        next = null;
        if (handshake != null) {
            handshake.wipeState();
        }
    }
}
