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
 * <p>Threads: {@link #queueFromTun} and {@link #receiveUdp} may run on many threads at once (each
 * with its own {@link Round}). With an {@link OrderedPipeline} ({@link #usePipeline}) transport
 * packets are sealed and opened by its workers in parallel and finished in order by each peer's
 * lanes; without one, inline on the calling thread. Handshake messages that pass the mac1 check are queued and consumed
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
    private final LongAdder droppedPackets = new LongAdder();
    private static final byte[] EMPTY = new byte[0];
    /**
     * Batches a peer's lane may hold per direction (sealed or opened but not yet sent or written
     * included); a reader then waits briefly and drops (see {@link OrderedPipeline}).
     */
    public static final int LANE_CAPACITY = 128;
    /** Batches waiting for a crypto worker, all peers together. */
    public static final int WORK_CAPACITY = LANE_CAPACITY / 2;
    private final ArrayBlockingQueue<TransportBatch> freeBatches = new ArrayBlockingQueue<>(256);
    private final ThreadLocal<ChaChaPoly> aeads = ThreadLocal.withInitial(ChaChaPoly::new);
    private volatile OrderedPipeline pipeline;
    private volatile int inlineBelow;
    /** Queued handshakes from which the device counts as under load; lowered only by tests. */
    private volatile int underLoadThreshold = UNDER_LOAD;
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

    /** Per-thread working memory for reading packets. */
    public static final class Scratch {
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

    /**
     * Test-only: counts the device as under load (cookie replies, mac2 required, per-source rate
     * limits) from {@code queued} waiting handshake messages instead of {@link #UNDER_LOAD}; 0 means
     * always.
     */
    public void setUnderLoadThresholdForTests(int queued) {
        if (queued < 0) {
            throw new IllegalArgumentException("threshold must be >= 0");
        }
        this.underLoadThreshold = queued;
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
        closeLanes(p);
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

    // ---------------------------------------------------------------- the data path

    /**
     * Runs encryption and decryption on {@code p}'s workers, each peer's packets through its own
     * ordered lanes (see {@link OrderedPipeline}); without one (tests) everything runs inline on the
     * calling thread. Batches of fewer than {@code inlineBelow} packets for a lane with nothing
     * pending run inline on the reader (no hand-off for light traffic). Set once, before traffic.
     */
    public void usePipeline(OrderedPipeline p, int inlineBelow) {
        this.pipeline = p;
        this.inlineBelow = inlineBelow;
    }

    /**
     * Transport packets of one read from the TUN or the UDP socket, collected per peer so that
     * each peer's share goes to the pipeline as one batch. Owned by one thread; {@link #submit}
     * after each read.
     */
    public static final class Round {
        private final java.util.IdentityHashMap<Peer, TransportBatch> out = new java.util.IdentityHashMap<>();
        private final java.util.IdentityHashMap<Peer, TransportBatch> in = new java.util.IdentityHashMap<>();
    }

    /**
     * Encrypts the IP packet at {@code s.buf[PLAINTEXT_OFFSET, PLAINTEXT_OFFSET+len)} for the peer
     * whose allowed IPs contain its destination and sends it; stages it and starts a handshake when
     * there is no usable session. Packets to no peer are dropped.
     */
    public void encryptFromTun(Scratch s, int len) {
        Round r = new Round();
        queueFromTun(r, s.buf, PLAINTEXT_OFFSET, len);
        submit(r);
    }

    /**
     * Adds the IP packet at {@code b[off, off+len)} to round {@code r}, for the peer whose allowed
     * IPs contain its destination (the bytes are copied). Packets to no peer are dropped; packets
     * to a peer without a usable session are staged and start a handshake.
     */
    public void queueFromTun(Round r, byte[] b, int off, int len) {
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
        queuePlaintext(r, peer, b, off, len, true);
    }

    private boolean usable(Keypair k, long now) {
        return k != null && now - k.createdNanos() < rejectAfterTime
                && Long.compareUnsigned(k.sentCount(), timers.rejectAfterMessages()) < 0;
    }

    /**
     * Adds {@code len} plaintext bytes at {@code b[off]} for {@code peer} to round {@code r} (0 = a
     * keepalive). {@code stage} keeps the packet for later when no session is usable. The counter is
     * taken at {@link #submit}.
     */
    private void queuePlaintext(Round r, Peer peer, byte[] b, int off, int len, boolean stage) {
        long now = clock.nanoTime();
        Keypair k = peer.current;
        InetSocketAddress ep = peer.endpoint;
        if (!usable(k, now) || ep == null) {
            if (stage && len > 0) {
                synchronized (peer) {
                    if (peer.staged.size() >= Peer.MAX_STAGED) {
                        peer.staged.pollFirst();
                    }
                    peer.staged.addLast(Arrays.copyOfRange(b, off, off + len));
                }
            }
            if (ep != null) {
                initiateHandshake(peer, false);
            }
            return;
        }
        int padded = paddedLength(len);
        TransportBatch t = r.out.get(peer);
        if (t != null && (!t.fits(padded) || !ep.equals(t.endpoint))) {
            r.out.remove(peer);
            submitOutbound(t);
            t = null;
        }
        if (t == null) {
            t = obtainBatch(peer, true);
            t.endpoint = ep;
            r.out.put(peer, t);
        }
        int i = t.count++;
        int at = t.used;
        t.off[i] = at;
        t.len[i] = padded;
        t.plain[i] = len;
        t.keypair[i] = k;
        System.arraycopy(b, off, t.buf, at + TRANSPORT_HEADER_LEN, len);
        Arrays.fill(t.buf, at + TRANSPORT_HEADER_LEN + len, at + TRANSPORT_HEADER_LEN + padded, (byte) 0);
        t.used = at + TRANSPORT_HEADER_LEN + padded + ChaChaPoly.TAG_LEN;
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
            if (k.initiator() && now - k.createdNanos() >= rekeyAfterTime) {
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

    /** Hands every batch of round {@code r} to the pipeline (or processes it inline). */
    public void submit(Round r) {
        if (!r.out.isEmpty()) {
            for (TransportBatch t : r.out.values()) {
                submitOutbound(t);
            }
            r.out.clear();
        }
        if (!r.in.isEmpty()) {
            for (TransportBatch t : r.in.values()) {
                submitInbound(t);
            }
            r.in.clear();
        }
    }

    /**
     * Takes the batch's send counters and queues it on the peer's lane under the peer's send lock:
     * counters of a keypair go out in increasing order although workers seal them in any order.
     */
    private void submitOutbound(TransportBatch t) {
        Peer peer = t.peer;
        boolean rekey = false;
        synchronized (peer.sendLock) {
            byte[] b = t.buf;
            for (int i = 0; i < t.count; i++) {
                Keypair k = t.keypair[i];
                long counter = k.nextCounter();
                if (Long.compareUnsigned(counter, timers.rejectAfterMessages()) >= 0) {
                    t.len[i] = -1;
                    rekey = true;
                    continue;
                }
                if (t.plain[i] > 0 && k.initiator()
                        && Long.compareUnsigned(counter, timers.rekeyAfterMessages()) >= 0) {
                    rekey = true;
                }
                int at = t.off[i];
                b[at] = TYPE_TRANSPORT;
                b[at + 1] = 0;
                b[at + 2] = 0;
                b[at + 3] = 0;
                putInt(b, at + TRANSPORT_RECEIVER, k.remoteIndex());
                putLong(b, at + TRANSPORT_COUNTER, counter);
                t.counter[i] = counter;
            }
            OrderedPipeline.Lane lane = lane(peer, true);
            if (lane == null) {
                crypt(t);
                finishOutbound(t);
            } else if (t.count >= inlineBelow || !lane.runInlineIfIdle(t)) {
                lane.submit(t);
            }
        }
        if (rekey) {
            initiateHandshake(peer, false);
        }
    }

    /** The parallel part: seals (outbound) or opens (inbound) every packet of {@code t} in place. */
    void crypt(TransportBatch t) {
        ChaChaPoly aead = aeads.get();
        byte[] b = t.buf;
        for (int i = 0; i < t.count; i++) {
            int at = t.off[i] + TRANSPORT_HEADER_LEN;
            Keypair k = t.keypair[i];
            if (t.outbound) {
                if (t.len[i] >= 0) {
                    t.len[i] = TRANSPORT_HEADER_LEN
                            + aead.seal(k.sendKey(), t.counter[i], null, b, at, t.len[i], b, at);
                }
            } else {
                t.len[i] = aead.open(k.receiveKey(), t.counter[i], null, b, at, t.len[i] - TRANSPORT_HEADER_LEN, b, at);
            }
        }
    }

    /** In order, on the peer's sequencer: sends the sealed datagrams. */
    private void finishOutbound(TransportBatch t) {
        io.sendUdp(t.endpoint, t.buf, t.off, t.len, t.count);
        long bytes = 0;
        for (int i = 0; i < t.count; i++) {
            bytes += Math.max(0, t.len[i]);
        }
        t.peer.txBytes.add(bytes);
        releaseBatch(t);
    }

    // ---------------------------------------------------------------- inbound (UDP → TUN)

    /**
     * Handles one datagram at {@code s.buf[0, len)} from {@code source}. Transport data is
     * decrypted in place and written to the TUN side; handshake messages with a valid mac1 are queued
     * for {@link #processHandshake}. Anything malformed is dropped and counted.
     */
    public void receiveUdp(Scratch s, int len, InetSocketAddress source) {
        Round r = new Round();
        receiveUdp(r, s.buf, len, source);
        submit(r);
    }

    /**
     * Handles one datagram at {@code b[0, len)} from {@code source}: transport data joins its
     * peer's batch in round {@code r} (copied; decrypted and written to the TUN side after
     * {@link #submit}); handshake messages with a valid mac1 are queued for
     * {@link #processHandshake}; cookie replies are consumed. Anything malformed is dropped and
     * counted.
     */
    public void receiveUdp(Round r, byte[] b, int len, InetSocketAddress source) {
        datagrams.increment();
        int type = type(b, 0, len);
        switch (type) {
            case TYPE_TRANSPORT -> queueTransport(r, b, len, source);
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

    private void queueTransport(Round r, byte[] b, int len, InetSocketAddress source) {
        if (len < TRANSPORT_MIN_LEN || len > DeviceCore.SCRATCH_SIZE) {
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
        if (clock.nanoTime() - k.createdNanos() >= rejectAfterTime) {
            invalid.increment();
            return;
        }
        TransportBatch t = r.in.get(peer);
        if (t != null && !t.fits(len)) {
            r.in.remove(peer);
            submitInbound(t);
            t = null;
        }
        if (t == null) {
            t = obtainBatch(peer, false);
            r.in.put(peer, t);
        }
        int i = t.count++;
        t.off[i] = t.used;
        t.len[i] = len;
        t.keypair[i] = k;
        t.source[i] = source;
        t.counter[i] = getLong(b, TRANSPORT_COUNTER);
        System.arraycopy(b, 0, t.buf, t.used, len);
        t.used += len;
    }

    private void submitInbound(TransportBatch t) {
        OrderedPipeline.Lane lane = lane(t.peer, false);
        if (lane == null) {
            crypt(t);
            finishInbound(t, io.openTunStream());
        } else if (t.count >= inlineBelow || !lane.runInlineIfIdle(t)) {
            lane.submit(t);
        }
    }

    /**
     * In order, on the peer's sequencer: the replay check (after decryption, as authenticated
     * counters only may move the window), session confirmation, roaming, timers, the allowed-IPs
     * check and the TUN write.
     */
    private void finishInbound(TransportBatch t, Io.TunStream tun) {
        for (int i = 0; i < t.count; i++) {
            int at = t.off[i];
            deliver(t.peer, t.keypair[i], t.buf, at + TRANSPORT_HEADER_LEN, t.len[i], t.len[i] < 0
                    ? 0
                    : TRANSPORT_HEADER_LEN + t.len[i] + ChaChaPoly.TAG_LEN, t.counter[i], t.source[i], tun);
        }
        tun.flush();
        releaseBatch(t);
    }

    /** One opened transport packet ({@code n} plaintext bytes at {@code b[off]}, or -1). */
    private void deliver(Peer peer, Keypair k, byte[] b, int off, int n, int wireLen, long counter,
            InetSocketAddress source, Io.TunStream tun) {
        if (n < 0 || !k.acceptCounter(counter, timers.rejectAfterMessages())) {
            invalid.increment();
            return;
        }
        long now = clock.nanoTime();
        if (peer.next == k) {
            promoteNext(peer, k);
        }
        // Roaming: any authenticated packet moves the endpoint to where it came from.
        InetSocketAddress ep = peer.endpoint;
        if (ep == null || !ep.equals(source)) {
            peer.endpoint = source;
        }
        peer.rxBytes.add(wireLen);
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
        tun.write(b, off, ipLen);
    }

    // ---------------------------------------------------------------- batches and lanes

    private TransportBatch obtainBatch(Peer peer, boolean outbound) {
        TransportBatch t = freeBatches.poll();
        if (t == null) {
            t = new TransportBatch(this);
        }
        t.start(peer, outbound);
        return t;
    }

    private void releaseBatch(TransportBatch t) {
        t.clear();
        freeBatches.offer(t);
    }

    /** A batch the pipeline dropped (full or closed lane): counted, its plaintext zeroed. */
    void dropBatch(TransportBatch t) {
        droppedPackets.add(t.count);
        releaseBatch(t);
    }

    /** Packets dropped because a peer's lane was full or closed. */
    public long droppedPackets() {
        return droppedPackets.sum();
    }

    /** The peer's lane for one direction, or null without a pipeline (or once the peer is gone). */
    private OrderedPipeline.Lane lane(Peer peer, boolean outbound) {
        OrderedPipeline p = pipeline;
        if (p == null) {
            return null;
        }
        OrderedPipeline.Lane l = outbound ? peer.outLane : peer.inLane;
        if (l != null) {
            return l;
        }
        synchronized (peer) {
            if (peer.removed) {
                return null;
            }
            String id = shortKey(peer);
            if (peer.outLane == null) {
                peer.outLane = p.newLane("wg-send-" + id, LANE_CAPACITY, j -> finishOutbound((TransportBatch) j));
            }
            if (peer.inLane == null) {
                Io.TunStream tun = io.openTunStream();
                peer.inLane = p.newLane("wg-receive-" + id, LANE_CAPACITY, j -> finishInbound((TransportBatch) j, tun));
            }
            return outbound ? peer.outLane : peer.inLane;
        }
    }

    private static void closeLanes(Peer peer) {
        OrderedPipeline.Lane out;
        OrderedPipeline.Lane in;
        synchronized (peer) {
            peer.removed = true;
            out = peer.outLane;
            in = peer.inLane;
            peer.outLane = null;
            peer.inLane = null;
        }
        if (out != null) {
            out.close();
        }
        if (in != null) {
            in.close();
        }
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
        if (handshakeQueue.size() >= underLoadThreshold) {
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
        Round r = new Round();
        for (byte[] p : packets) {
            queuePlaintext(r, peer, p, 0, p.length, true);
            Arrays.fill(p, (byte) 0);
        }
        submit(r);
        return true;
    }

    private void sendKeepalive(Peer peer) {
        Round r = new Round();
        queuePlaintext(r, peer, EMPTY, 0, 0, false);
        submit(r);
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
