package dev.wisp.wireguard.device;

import static dev.wisp.wireguard.noise.Messages.COOKIE_RECEIVER;
import static dev.wisp.wireguard.noise.Messages.COOKIE_REPLY_LEN;
import static dev.wisp.wireguard.noise.Messages.INITIATION_LEN;
import static dev.wisp.wireguard.noise.Messages.RESPONSE_LEN;
import static dev.wisp.wireguard.noise.Messages.RESP_RECEIVER;
import static dev.wisp.wireguard.noise.Messages.TYPE_INITIATION;
import static dev.wisp.wireguard.noise.Messages.getInt;

import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.UnknownPeerHandler;
import dev.wisp.wireguard.crypto.X25519;
import dev.wisp.wireguard.noise.CookieChecker;
import dev.wisp.wireguard.noise.Handshake;
import dev.wisp.wireguard.noise.Identity;
import dev.wisp.wireguard.noise.Keypair;
import dev.wisp.wireguard.noise.Tai64n;
import dev.wisp.wireguard.routing.AllowedIps;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The device's side of the Noise handshake (the idea of wireguard-go's noise-protocol.go and its
 * handshake routine): checks mac1 on arrival and queues what passes, consumes queued initiations and
 * responses — under load only with a valid mac2 (else a cookie reply) and within a per-source rate —
 * and creates our initiations and their retransmissions. Derived sessions go to the peer's
 * {@link Keypairs}; the index table tracks what is in flight.
 *
 * <p>Threads: {@link #offer} and {@link #consumeCookieReply} on the reader threads, {@link #process}
 * on one handshake thread, {@link #initiate} on any thread. The identity is replaced as a whole by
 * the device's configuration; per-peer state is changed under the peer's monitor.
 *
 * <p>Key rotation: besides its identity (the one it initiates with) the device may hold a secondary
 * one, whose public key other peers may already (or still) use: initiations, and responses, whose
 * mac1 is for either key are consumed with the key they were sent to.
 */
final class HandshakeProcessor {
    private static final Logger LOG = LoggerFactory.getLogger(HandshakeProcessor.class);
    /** Queue depth; at 1/8 of it the device counts as under load (wireguard-go's rule). */
    static final int QUEUE = 1024;
    static final int UNDER_LOAD = QUEUE / 8;
    /** At most 50 initiations a second are consumed from one peer. */
    static final long INITIATIONS_MIN_INTERVAL = 1_000_000_000L / 50;

    /** Installs a peer that the {@link UnknownPeerHandler} admitted; returns it, or null. */
    interface PeerInstaller {
        Peer install(PeerConfig config);
    }

    /** A handshake message waiting for the handshake thread, and the key whose mac1 it carried. */
    private record Inbound(byte[] msg, InetSocketAddress source, Keys keys) {}

    /** One of our static keys and the MAC layer derived from it; replaced as a whole. */
    record Keys(Identity identity, CookieChecker checker) {
        static Keys of(Identity id) {
            return id == null ? null : new Keys(id, new CookieChecker(id));
        }
    }

    private final Engine engine;
    /** The device's peers by public key. */
    private final Map<Key, Peer> peers;
    private final PeerInstaller installer;
    /** Our initiation was answered: what waited for the session may go (or a keepalive confirms it). */
    private final Consumer<Peer> initiatorSessionReady;
    private final SecureRandom random = new SecureRandom();
    private final RateLimiter rateLimiter = new RateLimiter();
    private final ArrayBlockingQueue<Inbound> queue = new ArrayBlockingQueue<>(QUEUE);
    private volatile UnknownPeerHandler unknownPeers = UnknownPeerHandler.REJECT;
    /** Queued messages from which the device counts as under load; lowered only by tests. */
    private volatile int underLoadThreshold = UNDER_LOAD;
    /** The key we initiate with (and answer to); replaced by the device's configuration. */
    private volatile Keys keys;
    /** A second key we answer to during a rotation, or null. */
    private volatile Keys secondary;

    HandshakeProcessor(Engine engine, Map<Key, Peer> peers, PeerInstaller installer,
            Consumer<Peer> initiatorSessionReady) {
        this.engine = engine;
        this.peers = peers;
        this.installer = installer;
        this.initiatorSessionReady = initiatorSessionReady;
    }

    /** Sets (or with null clears) the identity; the caller wipes the old one. */
    void useIdentity(Identity id) {
        keys = Keys.of(id);
    }

    Identity identity() {
        Keys k = keys;
        return k == null ? null : k.identity();
    }

    /** Sets (or with null clears) the secondary identity; the caller wipes the old one. */
    void useSecondary(Identity id) {
        secondary = Keys.of(id);
    }

    Identity secondary() {
        Keys k = secondary;
        return k == null ? null : k.identity();
    }

    /** The secondary identity becomes the identity and the identity the secondary one. */
    void swap() {
        Keys k = keys;
        keys = secondary;
        secondary = k;
    }

    void setUnknownPeerHandler(UnknownPeerHandler handler) {
        this.unknownPeers = handler;
    }

    void setUnderLoadThreshold(int queued) {
        this.underLoadThreshold = queued;
    }

    int pending() {
        return queue.size();
    }

    void clear() {
        queue.clear();
    }

    // ---------------------------------------------------------------- arriving messages

    /** An initiation or response at {@code b[0, len)}: queued (copied) when its mac1 is valid. */
    void offer(byte[] b, int len, int type, InetSocketAddress source) {
        Keys k = keys;
        if (len != (type == TYPE_INITIATION ? INITIATION_LEN : RESPONSE_LEN) || k == null) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        if (!k.checker().checkMac1(b, len)) {
            Keys second = secondary;
            if (second == null || !second.checker().checkMac1(b, len)) {
                engine.count(Counters.Event.BAD_MAC1);
                return;
            }
            k = second;
        }
        if (!queue.offer(new Inbound(Arrays.copyOf(b, len), source, k))) {
            engine.count(Counters.Event.RATE_LIMITED);
        }
    }

    /** A cookie reply at {@code b[0, len)} to one of our messages: its peer takes the cookie. */
    void consumeCookieReply(byte[] b, int len) {
        IndexTable.Entry entry = len == COOKIE_REPLY_LEN ? engine.indices().get(getInt(b, COOKIE_RECEIVER)) : null;
        if (entry == null) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        Peer peer = entry.peer();
        byte[] msg = Arrays.copyOf(b, len);
        synchronized (peer) {
            if (!peer.handshake.consumeCookieReply(msg, engine.clock().nanoTime())) {
                engine.count(Counters.Event.INVALID);
            }
        }
    }

    /**
     * Consumes one queued message, waiting up to {@code timeoutMillis} for one; false when none
     * came.
     */
    boolean process(long timeoutMillis) throws InterruptedException {
        Inbound in = queue.poll(timeoutMillis, TimeUnit.MILLISECONDS);
        if (in == null) {
            return false;
        }
        Keys k = in.keys;
        if (k != keys && k != secondary) {
            // The key it was sent to left the device while it waited (rotation over, key changed).
            engine.count(Counters.Event.INVALID);
            return true;
        }
        Identity id = k.identity();
        CookieChecker checker = k.checker();
        long now = engine.clock().nanoTime();
        byte[] msg = in.msg;
        if (queue.size() >= underLoadThreshold) {
            byte[] src = sourceBytes(in.source);
            if (!checker.checkMac2(msg, msg.length, src, now)) {
                engine.io().sendUdp(in.source, checker.createReply(msg, msg.length, src, now), 0, COOKIE_REPLY_LEN);
                engine.count(Counters.Event.COOKIE_REPLY_SENT);
                return true;
            }
            if (!rateLimiter.allow(in.source.getAddress(), now)) {
                engine.count(Counters.Event.RATE_LIMITED);
                return true;
            }
        }
        if (msg[0] == TYPE_INITIATION) {
            consumeInitiation(id, msg, in.source, now);
        } else {
            consumeResponse(msg, in.source, now);
        }
        return true;
    }

    /** The source as the cookie binds it: address bytes, then the port (big-endian). */
    private static byte[] sourceBytes(InetSocketAddress a) {
        byte[] ip = a.getAddress().getAddress();
        byte[] out = Arrays.copyOf(ip, ip.length + 2);
        out[ip.length] = (byte) (a.getPort() >>> 8);
        out[ip.length + 1] = (byte) a.getPort();
        return out;
    }

    private void consumeInitiation(Identity id, byte[] msg, InetSocketAddress source, long now) {
        Optional<Handshake.Initiation> parsed = Handshake.consumeInitiation(id, msg,
                engine.counters().adder(Counters.Event.DH_OPERATION));
        if (parsed.isEmpty()) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        Handshake.Initiation init = parsed.get();
        Peer peer = peerOrJustInTime(Key.of(init.remoteStatic()), source);
        if (peer == null) {
            return;
        }
        byte[] response;
        synchronized (peer) {
            Handshake hs = peer.handshake.noise();
            if (hs == null) {
                return;
            }
            switch (peer.handshake.admit(init.timestamp(), now)) {
                case REPLAYED -> {
                    engine.count(Counters.Event.INVALID);
                    return;
                }
                case TOO_SOON -> {
                    engine.count(Counters.Event.RATE_LIMITED);
                    return;
                }
                case ACCEPT -> {
                    // go on below
                }
            }
            hs.acceptInitiation(init);
            response = hs.createResponse(engine.indices().reserve(peer), X25519.generatePrivateKey());
            peer.handshake.stamp(response, now);
            peer.keypairs.derivedAsResponder(hs.responderKeypair(now));
            peer.handshakeCompleted(engine.clock().now(), source, id);
            peer.timers.sessionDerived(now);
        }
        engine.count(Counters.Event.HANDSHAKE_COMPLETED);
        peer.rxBytes.add(msg.length);
        engine.io().sendUdp(source, response, 0, response.length);
        peer.txBytes.add(response.length);
    }

    /** The configured peer with this key, or one the unknown-peer handler installs, or null. */
    private Peer peerOrJustInTime(Key remote, InetSocketAddress source) {
        Peer peer = peers.get(remote);
        if (peer != null) {
            return peer;
        }
        Optional<PeerConfig> jit;
        try {
            jit = unknownPeers.onInitiation(remote, source);
        } catch (RuntimeException e) {
            LOG.warn("unknown-peer handler failed; dropping the initiation: {}", e.toString());
            jit = Optional.empty();
        }
        if (jit.isEmpty() || !jit.get().publicKey().equals(remote)) {
            engine.count(Counters.Event.INVALID);
            return null;
        }
        return installer.install(jit.get());
    }

    /**
     * The peer that the unknown-peer handler installs for a packet from the TUN side at
     * {@code b[off, off+len)} that no peer's allowed IPs contain, or null.
     */
    Peer peerForUnroutedPacket(byte[] b, int off, int len) {
        InetAddress dst = AllowedIps.destinationOf(b, off, len);
        if (dst == null) {
            return null;
        }
        Optional<PeerConfig> jit;
        try {
            jit = unknownPeers.onPacketTo(dst);
        } catch (RuntimeException e) {
            LOG.warn("unknown-peer handler failed; dropping the packet: {}", e.toString());
            return null;
        }
        if (jit.isEmpty()) {
            return null;
        }
        installer.install(jit.get());
        return engine.allowedIps().lookupDestination(b, off, len);
    }

    private void consumeResponse(byte[] msg, InetSocketAddress source, long now) {
        if (!(engine.indices().get(getInt(msg, RESP_RECEIVER)) instanceof IndexTable.Handshaking(Peer peer))) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        synchronized (peer) {
            Handshake hs = peer.handshake.noise();
            Optional<Keypair> kp = hs == null ? Optional.empty() : hs.consumeResponse(msg, now);
            if (kp.isEmpty()) {
                engine.count(Counters.Event.INVALID);
                return;
            }
            peer.keypairs.derivedAsInitiator(kp.get());
            peer.handshakeCompleted(engine.clock().now(), source, hs.local());
            peer.handshake.completed();
            peer.timers.handshakeCompleted();
            peer.timers.sessionDerived(now);
        }
        engine.count(Counters.Event.HANDSHAKE_COMPLETED);
        peer.rxBytes.add(msg.length);
        initiatorSessionReady.accept(peer);
    }

    // ---------------------------------------------------------------- our initiations

    /**
     * Sends a handshake initiation to {@code peer} unless one went out less than REKEY_TIMEOUT ago
     * ({@code retransmission}: a timer's resend, which bypasses that limit).
     */
    void initiate(Peer peer, boolean retransmission) {
        byte[] msg;
        InetSocketAddress ep;
        synchronized (peer) {
            long now = engine.clock().nanoTime();
            Handshake hs = peer.handshake.noise();
            ep = peer.endpoint();
            if (hs == null || ep == null
                    || !peer.handshake.mayInitiate(now, engine.timing().rekeyTimeout(), retransmission)) {
                return;
            }
            if (hs.state() == Handshake.State.INITIATION_CREATED) {
                engine.indices().release(hs.localIndex(), peer);
            }
            msg = hs.createInitiation(engine.indices().reserve(peer), Tai64n.of(engine.clock().now()),
                    X25519.generatePrivateKey());
            peer.handshake.initiated(msg, now);
            peer.timers.handshakeInitiated(now, (long) (random.nextDouble() * Timing.RETRANSMIT_JITTER_NANOS));
        }
        engine.io().sendUdp(ep, msg, 0, msg.length);
        peer.txBytes.add(msg.length);
    }

    /** The retransmit timer fired: resend, or after too many attempts give up until new traffic. */
    void retransmit(Peer peer, long now) {
        boolean giveUp;
        synchronized (peer) {
            giveUp = peer.handshake.retransmissionExhausted(engine.timing().maxHandshakeAttempts());
            if (giveUp) {
                peer.clearStaged();
                peer.handshake.abandon(engine.indices());
                peer.timers.handshakeAbandoned(now);
            }
        }
        if (giveUp) {
            LOG.debug("handshake with peer {} did not complete after {} attempts", peer.shortKey(),
                    engine.timing().maxHandshakeAttempts() + 2);
        } else {
            initiate(peer, true);
        }
    }
}
