package dev.wisp.wireguard.device;

import static dev.wisp.wireguard.noise.Messages.*;
import static java.util.Objects.requireNonNull;

import dev.wisp.wireguard.DeviceStats;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.Timers;
import dev.wisp.wireguard.UnknownPeerHandler;
import dev.wisp.wireguard.crypto.ChaChaPoly;
import dev.wisp.wireguard.crypto.X25519;
import dev.wisp.wireguard.noise.CookieChecker;
import dev.wisp.wireguard.noise.Handshake;
import dev.wisp.wireguard.noise.Identity;
import dev.wisp.wireguard.noise.Keypair;
import dev.wisp.wireguard.noise.Tai64n;
import dev.wisp.wireguard.routing.AllowedIps;
import java.net.InetSocketAddress;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The WireGuard protocol engine of one device, without I/O: plaintext IP packets in from the TUN
 * side, datagrams in from the UDP side, timers advanced by {@link #tick}, and everything it wants
 * sent handed to an {@link Io}. Time comes from an injected {@link Clock}.
 *
 * <p>Threads: {@link #encryptFromTun} and {@link #receiveUdp} may run on many threads at once (each
 * with its own {@link Scratch}); handshake messages that pass the mac1 check are queued and consumed
 * by whoever calls {@link #processHandshake} (one handshake thread in production). Configuration
 * methods may run on any thread. Per-peer state follows {@link Peer}'s lock discipline; the peer
 * map and index table are concurrent maps.
 */
public final class DeviceCore {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceCore.class);
    /** Handshake queue depth; at 1/8 of it the device counts as under load (wireguard-go's rule). */
    static final int HANDSHAKE_QUEUE = 1024;
    static final int UNDER_LOAD = HANDSHAKE_QUEUE / 8;
    static final long INITIATIONS_MIN_INTERVAL = 1_000_000_000L / 50;
    static final long TIMER_JITTER_NANOS = 333_000_000L;
    /** Scratch space: a full 64 KiB IP packet, the transport header and padding plus tag. */
    public static final int SCRATCH_SIZE = 65_536 + 64;
    /** Where {@link #encryptFromTun} expects the plaintext in {@link Scratch#buf}. */
    public static final int PLAINTEXT_OFFSET = TRANSPORT_HEADER_LEN;

    private final Clock clock;
    private final Io io;
    private final Timers timers;
    private final SecureRandom random = new SecureRandom();
    private final LongAdder dhOperations = new LongAdder();
    private final LongAdder badMac1 = new LongAdder();
    private final LongAdder cookieReplies = new LongAdder();
    private final LongAdder rateLimited = new LongAdder();
    private final LongAdder handshakes = new LongAdder();
    private final LongAdder invalid = new LongAdder();
    private final LongAdder datagrams = new LongAdder();
    private final RateLimiter rateLimiter = new RateLimiter();
    private final ArrayBlockingQueue<Inbound> handshakeQueue = new ArrayBlockingQueue<>(HANDSHAKE_QUEUE);
    private final Map<Key, Peer> peers = new ConcurrentHashMap<>();
    private final Map<Integer, Object> indices = new ConcurrentHashMap<>();
    private final AllowedIps<Peer> allowedIps = new AllowedIps<>();
    private final long rejectAfterTime;
    private final long rekeyAfterTime;
    private final long rekeyTimeout;
    private final long keepaliveTimeout;
    private final int maxHandshakeAttempts;
    private volatile UnknownPeerHandler unknownPeers = UnknownPeerHandler.REJECT;
    /** Guarded by this: replaced as a whole when the private key changes. */
    private volatile Identity identity;
    private volatile CookieChecker cookieChecker;
    private volatile int mtu = 1420;

    /** A handshake message waiting for the handshake thread. */
    private record Inbound(byte[] msg, InetSocketAddress source) {}

    /** A keypair in the index table, with its peer. */
    private record Session(Peer peer, Keypair keypair) {}

    /** Per-thread working memory for the data path: a cipher and a packet buffer. */
    public static final class Scratch {
        final ChaChaPoly aead = new ChaChaPoly();
        /** The packet buffer: callers read into it at the offsets the methods name. */
        public final byte[] buf = new byte[SCRATCH_SIZE];
    }

    public DeviceCore(Clock clock, Io io, Timers timers) {
        this.clock = requireNonNull(clock, "clock");
        this.io = requireNonNull(io, "io");
        this.timers = requireNonNull(timers, "timers");
        this.rejectAfterTime = timers.rejectAfterTime().toNanos();
        this.rekeyAfterTime = timers.rekeyAfterTime().toNanos();
        this.rekeyTimeout = timers.rekeyTimeout().toNanos();
        this.keepaliveTimeout = timers.keepaliveTimeout().toNanos();
        this.maxHandshakeAttempts = (int) (timers.rekeyAttemptTime().toNanos() / rekeyTimeout);
    }

    // ---------------------------------------------------------------- configuration

    public void setUnknownPeerHandler(UnknownPeerHandler handler) {
        this.unknownPeers = requireNonNull(handler, "handler");
    }

    public void setMtu(int mtu) {
        this.mtu = mtu;
    }

    /** Sets (or with null clears) the private key; every session is dropped. */
    public synchronized void setPrivateKey(Key privateKey) {
        Identity old = identity;
        if (privateKey == null || privateKey.isZero()) {
            identity = null;
            cookieChecker = null;
        } else {
            Identity id = new Identity(privateKey.bytes());
            if (old != null && Arrays.equals(old.privateKey(), id.privateKey())) {
                id.wipe();
                return;
            }
            identity = id;
            cookieChecker = new CookieChecker(id);
            // A peer with our own public key would be talking to itself; wireguard-go drops it too.
            Peer self = peers.get(Key.of(id.publicKey()));
            if (self != null) {
                removePeer(self.publicKey);
            }
        }
        for (Peer p : peers.values()) {
            synchronized (p) {
                p.wipeSessions();
                p.handshake = identity == null
                        ? null
                        : new Handshake(identity, p.publicKeyBytes, p.presharedKey, dhOperations);
            }
        }
        if (old != null) {
            old.wipe();
        }
    }

    /** The private key, or null. */
    public Key privateKey() {
        Identity id = identity;
        return id == null ? null : Key.of(id.privateKey());
    }

    public Key publicKey() {
        Identity id = identity;
        return id == null ? null : Key.of(id.publicKey());
    }

    /** Adds or updates a peer with {@code wg set} semantics. */
    public synchronized void upsertPeer(PeerConfig config) {
        requireNonNull(config, "config");
        Identity id = identity;
        if (id != null && Key.of(id.publicKey()).equals(config.publicKey())) {
            throw new IllegalArgumentException("a peer cannot have the device's own public key");
        }
        Peer p = peers.computeIfAbsent(config.publicKey(), k -> {
            Peer np = new Peer(k);
            np.handshake = id == null ? null : new Handshake(id, np.publicKeyBytes, np.presharedKey, dhOperations);
            return np;
        });
        synchronized (p) {
            if (config.presharedKey() != null && !Arrays.equals(config.presharedKey().bytes(), p.presharedKey)) {
                Arrays.fill(p.presharedKey, (byte) 0);
                p.presharedKey = config.presharedKey().bytes();
                if (p.handshake != null) {
                    p.handshake.destroy();
                }
                p.handshake = id == null
                        ? null
                        : new Handshake(id, p.publicKeyBytes, p.presharedKey, dhOperations);
            }
            if (config.endpoint() != null) {
                p.endpoint = config.endpoint();
            }
            if (config.persistentKeepalive() != null) {
                int secs = (int) config.persistentKeepalive().toSeconds();
                boolean turnedOn = p.persistentKeepaliveSeconds == 0 && secs > 0;
                p.persistentKeepaliveSeconds = secs;
                if (turnedOn) {
                    // As wg set does: a new keepalive interval sends one at once.
                    p.persistentKeepaliveDeadline = clock.nanoTime();
                } else if (secs == 0) {
                    p.persistentKeepaliveDeadline = 0;
                }
            }
        }
        if (config.replaceAllowedIps()) {
            allowedIps.removeAll(p);
        }
        for (Prefix prefix : config.allowedIps()) {
            allowedIps.insert(prefix.address(), prefix.length(), p);
        }
    }

    public synchronized boolean removePeer(Key publicKey) {
        Peer p = peers.remove(requireNonNull(publicKey, "publicKey"));
        if (p == null) {
            return false;
        }
        allowedIps.removeAll(p);
        indices.values().removeIf(v -> v == p || v instanceof Session s && s.peer == p);
        synchronized (p) {
            p.wipeSessions();
            if (p.handshake != null) {
                p.handshake.destroy();
            }
            Arrays.fill(p.presharedKey, (byte) 0);
            p.staged.clear();
        }
        return true;
    }

    public synchronized void removeAllPeers() {
        for (Key k : List.copyOf(peers.keySet())) {
            removePeer(k);
        }
    }

    public boolean hasPeer(Key publicKey) {
        return peers.containsKey(publicKey);
    }

    public List<PeerStatus> peers() {
        List<PeerStatus> out = new ArrayList<>();
        for (Peer p : peers.values()) {
            boolean psk;
            synchronized (p) {
                psk = !isZero(p.presharedKey);
            }
            List<Prefix> ips = allowedIps.entriesOf(p).stream()
                    .map(e -> new Prefix(e.address(), e.prefixLength())).toList();
            out.add(new PeerStatus(p.publicKey, psk, p.endpoint, p.lastHandshake, p.txBytes.sum(), p.rxBytes.sum(),
                    Duration.ofSeconds(p.persistentKeepaliveSeconds), ips));
        }
        return out;
    }

    /** The preshared key of a peer (for the UAPI's get), or null. */
    public Key presharedKey(Key peer) {
        Peer p = peers.get(peer);
        if (p == null) {
            return null;
        }
        synchronized (p) {
            return Key.of(p.presharedKey);
        }
    }

    public DeviceStats stats() {
        return new DeviceStats(dhOperations.sum(), badMac1.sum(), cookieReplies.sum(), rateLimited.sum(),
                handshakes.sum(), invalid.sum(), datagrams.sum(), peers.size(), indices.size());
    }

    /** Entries in the index table (sessions and handshakes in flight): must stay bounded. */
    public int indexTableSize() {
        return indices.size();
    }

    private static boolean isZero(byte[] b) {
        int acc = 0;
        for (byte x : b) {
            acc |= x;
        }
        return acc == 0;
    }

    // ---------------------------------------------------------------- outbound (TUN → UDP)

    /**
     * Encrypts the IP packet at {@code s.buf[PLAINTEXT_OFFSET, PLAINTEXT_OFFSET+len)} for the peer
     * whose allowed IPs contain its destination and sends it; stages it and starts a handshake when
     * there is no usable session. Packets to no peer are dropped.
     */
    public void encryptFromTun(Scratch s, int len) {
        byte[] b = s.buf;
        int off = PLAINTEXT_OFFSET;
        if (len < 1) {
            return;
        }
        int version = (b[off] & 0xff) >>> 4;
        Peer peer;
        if (version == 4 && len >= 20) {
            peer = allowedIps.lookupV4(b, off + 16);
        } else if (version == 6 && len >= 40) {
            peer = allowedIps.lookupV6(b, off + 24);
        } else {
            invalid.increment();
            return;
        }
        if (peer == null) {
            invalid.increment();
            return;
        }
        sendPlaintext(peer, s, len, true);
    }

    private boolean usable(Keypair k, long now) {
        return k != null && now - k.createdNanos() < rejectAfterTime
                && Long.compareUnsigned(k.sentCount(), timers.rejectAfterMessages()) < 0;
    }

    /**
     * Sends {@code len} plaintext bytes at {@code s.buf[PLAINTEXT_OFFSET]} to {@code peer} (0 = a
     * keepalive). {@code stage} keeps the packet for later when no session is usable.
     */
    private void sendPlaintext(Peer peer, Scratch s, int len, boolean stage) {
        long now = clock.nanoTime();
        Keypair k = peer.current;
        InetSocketAddress ep = peer.endpoint;
        if (!usable(k, now) || ep == null) {
            if (stage && len > 0) {
                synchronized (peer) {
                    if (peer.staged.size() >= Peer.MAX_STAGED) {
                        peer.staged.pollFirst();
                    }
                    peer.staged.addLast(Arrays.copyOfRange(s.buf, PLAINTEXT_OFFSET, PLAINTEXT_OFFSET + len));
                }
            }
            if (ep != null) {
                initiateHandshake(peer, false);
            }
            return;
        }
        long counter = k.nextCounter();
        if (Long.compareUnsigned(counter, timers.rejectAfterMessages()) >= 0) {
            initiateHandshake(peer, false);
            return;
        }
        byte[] b = s.buf;
        int padded = paddedLength(len);
        Arrays.fill(b, PLAINTEXT_OFFSET + len, PLAINTEXT_OFFSET + padded, (byte) 0);
        b[0] = TYPE_TRANSPORT;
        b[1] = 0;
        b[2] = 0;
        b[3] = 0;
        putInt(b, TRANSPORT_RECEIVER, k.remoteIndex());
        putLong(b, TRANSPORT_COUNTER, counter);
        int n = s.aead.seal(k.sendKey(), counter, null, b, PLAINTEXT_OFFSET, padded, b, PLAINTEXT_OFFSET);
        int total = TRANSPORT_HEADER_LEN + n;
        io.sendUdp(ep, b, 0, total);
        peer.txBytes.add(total);
        // Timers: any authenticated packet sent; data sent.
        if (peer.keepaliveDeadline != 0) {
            peer.keepaliveDeadline = 0;
        }
        int pk = peer.persistentKeepaliveSeconds;
        if (pk > 0) {
            peer.persistentKeepaliveDeadline = now + pk * 1_000_000_000L;
        }
        if (len > 0) {
            if (peer.newHandshakeDeadline == 0) {
                peer.newHandshakeDeadline = now + keepaliveTimeout + rekeyTimeout;
            }
            if (k.initiator() && (now - k.createdNanos() >= rekeyAfterTime
                    || Long.compareUnsigned(counter, timers.rekeyAfterMessages()) >= 0)) {
                initiateHandshake(peer, false);
            }
        }
    }

    private int paddedLength(int len) {
        int padded = (len + 15) & ~15;
        if (len <= mtu && padded > mtu) {
            padded = mtu;
        }
        return padded;
    }

    // ---------------------------------------------------------------- inbound (UDP → TUN)

    /**
     * Handles one datagram at {@code s.buf[0, len)} from {@code source}. Transport data is
     * decrypted in place and written to the TUN side; handshake messages with a valid mac1 are queued
     * for {@link #processHandshake}. Anything malformed is dropped and counted.
     */
    public void receiveUdp(Scratch s, int len, InetSocketAddress source) {
        datagrams.increment();
        byte[] b = s.buf;
        int type = type(b, 0, len);
        switch (type) {
            case TYPE_TRANSPORT -> receiveTransport(s, len, source);
            case TYPE_INITIATION, TYPE_RESPONSE -> {
                int expected = type == TYPE_INITIATION ? INITIATION_LEN : RESPONSE_LEN;
                CookieChecker checker = cookieChecker;
                if (len != expected || checker == null) {
                    invalid.increment();
                    return;
                }
                if (!checker.checkMac1(b, len)) {
                    badMac1.increment();
                    return;
                }
                if (!handshakeQueue.offer(new Inbound(Arrays.copyOf(b, len), source))) {
                    rateLimited.increment();
                }
            }
            case TYPE_COOKIE_REPLY -> {
                if (len != COOKIE_REPLY_LEN) {
                    invalid.increment();
                    return;
                }
                receiveCookieReply(Arrays.copyOf(b, len));
            }
            default -> invalid.increment();
        }
    }

    private void receiveTransport(Scratch s, int len, InetSocketAddress source) {
        byte[] b = s.buf;
        if (len < TRANSPORT_MIN_LEN) {
            invalid.increment();
            return;
        }
        Object entry = indices.get(getInt(b, TRANSPORT_RECEIVER));
        if (!(entry instanceof Session session)) {
            invalid.increment();
            return;
        }
        Keypair k = session.keypair;
        Peer peer = session.peer;
        long now = clock.nanoTime();
        if (now - k.createdNanos() >= rejectAfterTime) {
            invalid.increment();
            return;
        }
        long counter = getLong(b, TRANSPORT_COUNTER);
        int n = s.aead.open(k.receiveKey(), counter, null, b, TRANSPORT_HEADER_LEN, len - TRANSPORT_HEADER_LEN, b,
                TRANSPORT_HEADER_LEN);
        if (n < 0 || !k.acceptCounter(counter, timers.rejectAfterMessages())) {
            invalid.increment();
            return;
        }
        if (peer.next == k) {
            promoteNext(peer, k);
        }
        InetSocketAddress ep = peer.endpoint;
        if (ep == null || !ep.equals(source)) {
            peer.endpoint = source;
        }
        peer.rxBytes.add(len);
        // Timers: any authenticated packet received.
        if (peer.newHandshakeDeadline != 0) {
            peer.newHandshakeDeadline = 0;
        }
        int pk = peer.persistentKeepaliveSeconds;
        if (pk > 0) {
            peer.persistentKeepaliveDeadline = now + pk * 1_000_000_000L;
        }
        if (k == peer.current && k.initiator()
                && now - k.createdNanos() >= rejectAfterTime - keepaliveTimeout - rekeyTimeout) {
            synchronized (peer) {
                if (!peer.rekeyRequestedOnReceive) {
                    peer.rekeyRequestedOnReceive = true;
                    initiateHandshake(peer, false);
                }
            }
        }
        if (n == 0) {
            return;
        }
        if (peer.keepaliveDeadline == 0) {
            peer.keepaliveDeadline = now + keepaliveTimeout;
        }
        int off = TRANSPORT_HEADER_LEN;
        int version = (b[off] & 0xff) >>> 4;
        int ipLen;
        Peer owner;
        if (version == 4 && n >= 20) {
            ipLen = (b[off + 2] & 0xff) << 8 | (b[off + 3] & 0xff);
            owner = allowedIps.lookupV4(b, off + 12);
        } else if (version == 6 && n >= 40) {
            ipLen = 40 + ((b[off + 4] & 0xff) << 8 | (b[off + 5] & 0xff));
            owner = allowedIps.lookupV6(b, off + 8);
        } else {
            invalid.increment();
            return;
        }
        if (ipLen > n || owner != peer) {
            invalid.increment();
            return;
        }
        io.writeTun(b, off, ipLen);
    }

    private void promoteNext(Peer peer, Keypair k) {
        synchronized (peer) {
            if (peer.next != k) {
                return;
            }
            Keypair old = peer.previous;
            peer.previous = peer.current;
            peer.current = k;
            peer.next = null;
            dropKeypair(old);
            peer.retransmitDeadline = 0;
            peer.handshakeAttempts = 0;
            peer.rekeyRequestedOnReceive = false;
        }
        flushStaged(peer);
    }

    private void dropKeypair(Keypair k) {
        if (k != null) {
            indices.computeIfPresent(k.localIndex(), (i, v) -> v instanceof Session s && s.keypair == k ? null : v);
            k.wipe();
        }
    }

    private void receiveCookieReply(byte[] msg) {
        Object entry = indices.get(getInt(msg, COOKIE_RECEIVER));
        Peer peer = entry instanceof Peer p ? p : entry instanceof Session s ? s.peer : null;
        if (peer == null) {
            invalid.increment();
            return;
        }
        synchronized (peer) {
            if (!peer.cookies.consumeReply(msg, clock.nanoTime())) {
                invalid.increment();
            }
        }
    }

    // ---------------------------------------------------------------- handshakes

    /** Handshake messages waiting: what {@link #processHandshake} will consume. */
    public int pendingHandshakes() {
        return handshakeQueue.size();
    }

    /**
     * Consumes one queued handshake message, waiting up to {@code timeoutMillis} for one. Returns
     * false when none came.
     */
    public boolean processHandshake(long timeoutMillis) throws InterruptedException {
        Inbound in = handshakeQueue.poll(timeoutMillis, java.util.concurrent.TimeUnit.MILLISECONDS);
        if (in == null) {
            return false;
        }
        Identity id = identity;
        CookieChecker checker = cookieChecker;
        if (id == null || checker == null) {
            return true;
        }
        long now = clock.nanoTime();
        byte[] msg = in.msg;
        if (handshakeQueue.size() >= UNDER_LOAD) {
            byte[] src = sourceBytes(in.source);
            if (!checker.checkMac2(msg, msg.length, src, now)) {
                io.sendUdp(in.source, checker.createReply(msg, msg.length, src, now), 0, COOKIE_REPLY_LEN);
                cookieReplies.increment();
                return true;
            }
            if (!rateLimiter.allow(in.source.getAddress(), now)) {
                rateLimited.increment();
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

    private static byte[] sourceBytes(InetSocketAddress a) {
        byte[] ip = a.getAddress().getAddress();
        byte[] out = Arrays.copyOf(ip, ip.length + 2);
        out[ip.length] = (byte) (a.getPort() >>> 8);
        out[ip.length + 1] = (byte) a.getPort();
        return out;
    }

    private void consumeInitiation(Identity id, byte[] msg, InetSocketAddress source, long now) {
        Optional<Handshake.Initiation> parsed = Handshake.consumeInitiation(id, msg, dhOperations);
        if (parsed.isEmpty()) {
            invalid.increment();
            return;
        }
        Handshake.Initiation init = parsed.get();
        Key remote = Key.of(init.remoteStatic());
        Peer peer = peers.get(remote);
        if (peer == null) {
            Optional<PeerConfig> jit;
            try {
                jit = unknownPeers.onInitiation(remote, source);
            } catch (RuntimeException e) {
                LOG.warn("unknown-peer handler failed; dropping the initiation: {}", e.toString());
                jit = Optional.empty();
            }
            if (jit.isEmpty() || !jit.get().publicKey().equals(remote)) {
                invalid.increment();
                return;
            }
            upsertPeer(jit.get());
            peer = peers.get(remote);
            if (peer == null) {
                return;
            }
        }
        byte[] response;
        Keypair kp;
        synchronized (peer) {
            Handshake hs = peer.handshake;
            if (hs == null) {
                return;
            }
            if (!Tai64n.after(init.timestamp(), peer.lastTimestamp)) {
                invalid.increment();
                return;
            }
            if (peer.initiationConsumedEver && now - peer.lastInitiationConsumedNanos < INITIATIONS_MIN_INTERVAL) {
                rateLimited.increment();
                return;
            }
            peer.lastTimestamp = init.timestamp();
            peer.lastInitiationConsumedNanos = now;
            peer.initiationConsumedEver = true;
            hs.acceptInitiation(init);
            int index = newIndex(peer);
            response = hs.createResponse(index, X25519.generatePrivateKey());
            peer.cookies.stamp(response, now);
            indices.remove(index);
            kp = hs.responderKeypair(now);
            indices.put(index, new Session(peer, kp));
            Keypair oldNext = peer.next;
            Keypair oldPrevious = peer.previous;
            peer.next = kp;
            peer.previous = null;
            dropKeypair(oldNext);
            dropKeypair(oldPrevious);
            peer.endpoint = source;
            peer.lastHandshake = clock.now();
            peer.zeroKeysDeadline = now + 3 * rejectAfterTime;
            peer.newHandshakeDeadline = 0;
        }
        handshakes.increment();
        peer.rxBytes.add(msg.length);
        io.sendUdp(source, response, 0, response.length);
        peer.txBytes.add(response.length);
    }

    private void consumeResponse(byte[] msg, InetSocketAddress source, long now) {
        Object entry = indices.get(getInt(msg, RESP_RECEIVER));
        if (!(entry instanceof Peer peer)) {
            invalid.increment();
            return;
        }
        synchronized (peer) {
            Handshake hs = peer.handshake;
            Optional<Keypair> kp = hs == null ? Optional.empty() : hs.consumeResponse(msg, now);
            if (kp.isEmpty()) {
                invalid.increment();
                return;
            }
            Keypair k = kp.get();
            indices.put(k.localIndex(), new Session(peer, k));
            Keypair oldPrevious = peer.previous;
            Keypair oldNext = peer.next;
            if (oldNext != null) {
                peer.previous = oldNext;
                dropKeypair(peer.current);
            } else {
                peer.previous = peer.current;
            }
            peer.next = null;
            dropKeypair(oldPrevious);
            peer.current = k;
            peer.endpoint = source;
            peer.lastHandshake = clock.now();
            peer.retransmitDeadline = 0;
            peer.handshakeAttempts = 0;
            peer.rekeyRequestedOnReceive = false;
            peer.zeroKeysDeadline = now + 3 * rejectAfterTime;
            peer.newHandshakeDeadline = 0;
        }
        handshakes.increment();
        peer.rxBytes.add(msg.length);
        if (!flushStaged(peer)) {
            // Confirm the session so the responder may start using it.
            sendKeepalive(peer);
        }
    }

    private int newIndex(Object owner) {
        while (true) {
            int i = random.nextInt();
            if (indices.putIfAbsent(i, owner) == null) {
                return i;
            }
        }
    }

    /** Sends the staged packets; false when there were none. */
    private boolean flushStaged(Peer peer) {
        List<byte[]> packets;
        synchronized (peer) {
            if (peer.staged.isEmpty()) {
                return false;
            }
            packets = new ArrayList<>(peer.staged);
            peer.staged.clear();
        }
        Scratch s = new Scratch();
        for (byte[] p : packets) {
            System.arraycopy(p, 0, s.buf, PLAINTEXT_OFFSET, p.length);
            sendPlaintext(peer, s, p.length, true);
        }
        return true;
    }

    private void sendKeepalive(Peer peer) {
        sendPlaintext(peer, new Scratch(), 0, false);
    }

    /**
     * Sends a handshake initiation to {@code peer} unless one went out less than REKEY_TIMEOUT ago
     * ({@code retry} = a timer retransmission, which bypasses that limit).
     */
    private void initiateHandshake(Peer peer, boolean retry) {
        byte[] msg;
        InetSocketAddress ep;
        synchronized (peer) {
            long now = clock.nanoTime();
            Handshake hs = peer.handshake;
            ep = peer.endpoint;
            if (hs == null || ep == null) {
                return;
            }
            if (!retry) {
                if (peer.initiationSentEver && now - peer.lastInitiationSentNanos < rekeyTimeout) {
                    return;
                }
                peer.handshakeAttempts = 0;
            }
            if (hs.state() == Handshake.State.INITIATION_CREATED) {
                indices.remove(hs.localIndex(), peer);
            }
            peer.lastInitiationSentNanos = now;
            peer.initiationSentEver = true;
            int index = newIndex(peer);
            msg = hs.createInitiation(index, Tai64n.of(clock.now()), X25519.generatePrivateKey());
            peer.cookies.stamp(msg, now);
            peer.retransmitDeadline = now + rekeyTimeout + (long) (random.nextDouble() * TIMER_JITTER_NANOS);
        }
        io.sendUdp(ep, msg, 0, msg.length);
        peer.txBytes.add(msg.length);
    }

    // ---------------------------------------------------------------- timers

    /** Fires every due timer of every peer; the shell calls this a few times per second. */
    public void tick() {
        for (Peer p : peers.values()) {
            tick(p);
        }
    }

    private void tick(Peer p) {
        long now = clock.nanoTime();
        long d = p.retransmitDeadline;
        if (d != 0 && now - d >= 0) {
            boolean giveUp;
            synchronized (p) {
                p.retransmitDeadline = 0;
                p.handshakeAttempts++;
                giveUp = p.handshakeAttempts > maxHandshakeAttempts;
                if (giveUp) {
                    p.staged.clear();
                    if (p.handshake != null) {
                        if (p.handshake.state() == Handshake.State.INITIATION_CREATED) {
                            indices.remove(p.handshake.localIndex(), p);
                        }
                        p.handshake.wipeState();
                    }
                    if (p.zeroKeysDeadline == 0) {
                        p.zeroKeysDeadline = now + 3 * rejectAfterTime;
                    }
                }
            }
            if (giveUp) {
                LOG.debug("handshake with peer {} did not complete after {} attempts", shortKey(p),
                        maxHandshakeAttempts + 2);
            } else {
                initiateHandshake(p, true);
            }
        }
        d = p.keepaliveDeadline;
        if (d != 0 && now - d >= 0) {
            p.keepaliveDeadline = 0;
            sendKeepalive(p);
        }
        d = p.newHandshakeDeadline;
        if (d != 0 && now - d >= 0) {
            p.newHandshakeDeadline = 0;
            initiateHandshake(p, false);
        }
        d = p.persistentKeepaliveDeadline;
        if (d != 0 && now - d >= 0 && p.persistentKeepaliveSeconds > 0) {
            p.persistentKeepaliveDeadline = 0;
            sendKeepalive(p);
        }
        d = p.zeroKeysDeadline;
        if (d != 0 && now - d >= 0) {
            synchronized (p) {
                p.zeroKeysDeadline = 0;
                for (Keypair k : new Keypair[]{p.current, p.previous, p.next}) {
                    dropKeypair(k);
                }
                p.wipeSessions();
            }
        }
    }

    private static String shortKey(Peer p) {
        return p.publicKey.toBase64().substring(0, 8) + "…";
    }

    /** Wipes every secret (device closed). */
    public synchronized void destroy() {
        removeAllPeers();
        setPrivateKey(null);
        indices.clear();
        handshakeQueue.clear();
    }
}
