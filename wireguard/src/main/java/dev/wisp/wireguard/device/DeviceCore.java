package dev.wisp.wireguard.device;

import static dev.wisp.wireguard.noise.Messages.TRANSPORT_HEADER_LEN;
import static java.util.Objects.requireNonNull;

import dev.wisp.wireguard.DeviceStats;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.Timers;
import dev.wisp.wireguard.UnknownPeerHandler;
import dev.wisp.wireguard.noise.Identity;
import dev.wisp.wireguard.routing.AllowedIps;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The WireGuard protocol engine of one device, without I/O: plaintext IP packets in from the TUN
 * side, datagrams in from the UDP side, timers advanced by {@link #tick}, and everything it wants
 * sent handed to an {@link Io}. Time comes from an injected {@link Clock}.
 *
 * <p>This class is the engine's entrance and its configuration (keys, peers, allowed IPs); the
 * work is done by the path a packet takes: {@link SendPath} (TUN → wire), {@link ReceivePath}
 * (wire → TUN), {@link HandshakeProcessor} (handshake messages, our initiations), over the shared
 * {@link Batches} and {@link IndexTable}; each {@link Peer} owns its handshake, sessions and timers.
 *
 * <p>Threads: {@link #queueFromTun} and {@link #receiveUdp} may run on many threads at once (each
 * with its own {@link Round}). With an {@link OrderedPipeline} ({@link #usePipeline}) transport
 * packets are sealed and opened by its workers in parallel and finished in order by each peer's
 * lanes; without one, inline on the calling thread. Handshake messages that pass the mac1 check are
 * queued and consumed by whoever calls {@link #processHandshake} (one handshake thread in
 * production). Configuration methods may run on any thread and are serialised by this object's
 * monitor. The peer map and the index table are concurrent maps.
 */
public final class DeviceCore {
    /** Queued handshake messages from which the device counts as under load. */
    static final int UNDER_LOAD = HandshakeProcessor.UNDER_LOAD;
    /** Scratch space: a full 64 KiB IP packet, the transport header and padding plus tag. */
    public static final int SCRATCH_SIZE = 65_536 + 64;
    /** Where {@link #encryptFromTun} expects the plaintext in {@link Scratch#buf}. */
    public static final int PLAINTEXT_OFFSET = TRANSPORT_HEADER_LEN;
    /**
     * Batches a peer's lane may hold per direction (sealed or opened but not yet sent or written
     * included); a reader then waits briefly and drops (see {@link OrderedPipeline}).
     */
    public static final int LANE_CAPACITY = Batches.LANE_CAPACITY;
    /** Batches waiting for a crypto worker, all peers together. */
    public static final int WORK_CAPACITY = LANE_CAPACITY / 2;

    private final Clock clock;
    private final Timing timing;
    private final Counters counters;
    private final IndexTable indices;
    private final AllowedIps<Peer> allowedIps;
    private final Map<Key, Peer> peers = new ConcurrentHashMap<>();
    private final Batches batches;
    private final HandshakeProcessor handshakes;
    private final SendPath send;
    private final ReceivePath receive;

    /** Per-thread working memory for reading packets. */
    public static final class Scratch {
        /** The packet buffer: callers read into it at the offsets the methods name. */
        public final byte[] buf = new byte[SCRATCH_SIZE];
    }

    /**
     * Transport packets of one read from the TUN or the UDP socket, collected per peer so that
     * each peer's share goes to the pipeline as one batch. Owned by one thread; {@link #submit}
     * after each read.
     */
    public static final class Round {
        final IdentityHashMap<Peer, TransportBatch> out = new IdentityHashMap<>();
        final IdentityHashMap<Peer, TransportBatch> in = new IdentityHashMap<>();
    }

    public DeviceCore(Clock clock, Io io, Timers timers) {
        Engine engine = new Engine(requireNonNull(clock, "clock"), requireNonNull(io, "io"),
                Timing.of(requireNonNull(timers, "timers")), new Counters(), new IndexTable(), new AllowedIps<>());
        this.clock = clock;
        this.timing = engine.timing();
        this.counters = engine.counters();
        this.indices = engine.indices();
        this.allowedIps = engine.allowedIps();
        this.batches = new Batches(engine, new Batches.Finisher() {
            @Override
            public void sealed(TransportBatch t) {
                send.finish(t);
            }

            @Override
            public void opened(TransportBatch t, Io.TunStream tun) {
                receive.finish(t, tun);
            }
        });
        this.handshakes = new HandshakeProcessor(engine, peers, this::installJustInTime, this::initiatorSessionReady);
        this.send = new SendPath(engine, batches, handshakes);
        this.receive = new ReceivePath(engine, batches, handshakes, send);
    }

    private void initiatorSessionReady(Peer peer) {
        send.flushOrConfirm(peer);
    }

    private Peer installJustInTime(PeerConfig config) {
        upsertPeer(config);
        return peers.get(config.publicKey());
    }

    // ---------------------------------------------------------------- configuration

    public void setUnknownPeerHandler(UnknownPeerHandler handler) {
        handshakes.setUnknownPeerHandler(requireNonNull(handler, "handler"));
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
        handshakes.setUnderLoadThreshold(queued);
    }

    public void setMtu(int mtu) {
        send.setMtu(mtu);
    }

    /**
     * Sets (or with null clears) the private key; every session is dropped, and a secondary key
     * (see {@link #setSecondaryKey}) is removed.
     */
    public synchronized void setPrivateKey(Key privateKey) {
        Identity old = handshakes.identity();
        Identity id = null;
        if (privateKey != null && !privateKey.isZero()) {
            id = new Identity(privateKey.bytes());
            if (old != null && Arrays.equals(old.privateKey(), id.privateKey())) {
                id.wipe();
                return;
            }
            // A peer with our own public key would be talking to itself; wireguard-go drops it too.
            removePeer(Key.of(id.publicKey()));
        }
        Identity second = handshakes.secondary();
        handshakes.useSecondary(null);
        if (second != null) {
            second.wipe();
        }
        handshakes.useIdentity(id);
        for (Peer p : peers.values()) {
            synchronized (p) {
                p.zeroKeys();
                p.handshake.useIdentity(id);
            }
        }
        if (old != null) {
            old.wipe();
        }
    }

    /**
     * Sets (or with null removes, wiping it) a second private key the device answers handshakes to,
     * without initiating with it: the overlap of a key rotation, while peers learn the new key (set
     * before {@link #swapKeys}) or still use the old one (after). Sessions are kept.
     *
     * @throws IllegalArgumentException when it is the device's private key, or no private key is set
     */
    public synchronized void setSecondaryKey(Key privateKey) {
        Identity current = handshakes.identity();
        Identity old = handshakes.secondary();
        Identity id = null;
        if (privateKey != null) {
            if (current == null) {
                throw new IllegalArgumentException("set the device's private key before a secondary one");
            }
            id = new Identity(privateKey.bytes());
            if (Arrays.equals(current.publicKey(), id.publicKey())) {
                id.wipe();
                throw new IllegalArgumentException("the secondary key is the device's private key");
            }
            if (old != null && Arrays.equals(old.privateKey(), id.privateKey())) {
                id.wipe();
                return;
            }
            removePeer(Key.of(id.publicKey()));
        }
        handshakes.useSecondary(id);
        if (old != null) {
            old.wipe();
        }
    }

    /** The secondary key's public key, or null when there is none. */
    public Key secondaryPublicKey() {
        Identity id = handshakes.secondary();
        return id == null ? null : Key.of(id.publicKey());
    }

    /**
     * The secondary key becomes the device's private key, and the private key the secondary one
     * (still answered until {@link #setSecondaryKey}{@code (null)}): the switch of a key rotation.
     * Sessions are kept; each peer's handshake in flight starts over, and a handshake with every
     * peer that has an endpoint starts now, so that each confirms the new key (see
     * {@link #handshakeKeys}).
     *
     * @throws IllegalStateException when there is no secondary key
     */
    public void swapKeys() {
        List<Peer> initiate = new ArrayList<>();
        synchronized (this) {
            if (handshakes.secondary() == null) {
                throw new IllegalStateException("no secondary key to switch to");
            }
            handshakes.swap();
            Identity id = handshakes.identity();
            for (Peer p : peers.values()) {
                synchronized (p) {
                    p.handshake.useIdentity(id);
                }
                if (p.endpoint() != null) {
                    initiate.add(p);
                }
            }
        }
        for (Peer p : initiate) {
            // Past the one-per-REKEY_TIMEOUT limit (our last initiation may be seconds old), and
            // retransmitted until answered: a peer that learns the new key a moment later still confirms it.
            handshakes.initiate(p, true);
        }
    }

    /**
     * The peer {@code from} changed its key to {@code to} (its node rotated): it keeps its sessions,
     * endpoint, allowed IPs and counters, so traffic goes on; its next handshake uses {@code to}.
     * False when there is no peer {@code from}.
     *
     * @throws IllegalArgumentException when {@code to} is another peer's key or one of the device's
     */
    public synchronized boolean changePeerKey(Key from, Key to) {
        requireNonNull(from, "from");
        requireNonNull(to, "to");
        Peer p = peers.get(from);
        if (p == null || from.equals(to)) {
            return p != null;
        }
        if (peers.containsKey(to) || to.equals(publicKey()) || to.equals(secondaryPublicKey())) {
            throw new IllegalArgumentException("the new key of peer " + p.shortKey() + " is already in use on the "
                    + "device");
        }
        peers.remove(from);
        p.rekey(to, handshakes.identity());
        peers.put(to, p);
        return true;
    }

    /**
     * For each peer with a completed handshake, our public key in the last one: the key that peer
     * knew then (a rotation is over for a peer once this is the new key).
     */
    public Map<Key, Key> handshakeKeys() {
        Map<Key, Key> out = new java.util.HashMap<>();
        for (Peer p : peers.values()) {
            Key k = p.handshakeKey();
            if (k != null) {
                out.put(p.publicKey(), k);
            }
        }
        return out;
    }

    /** The private key, or null. */
    public Key privateKey() {
        Identity id = handshakes.identity();
        return id == null ? null : Key.of(id.privateKey());
    }

    public Key publicKey() {
        Identity id = handshakes.identity();
        return id == null ? null : Key.of(id.publicKey());
    }

    /** Adds or updates a peer with {@code wg set} semantics. */
    public synchronized void upsertPeer(PeerConfig config) {
        requireNonNull(config, "config");
        Identity id = handshakes.identity();
        if (id != null && Key.of(id.publicKey()).equals(config.publicKey())) {
            throw new IllegalArgumentException("a peer cannot have the device's own public key");
        }
        Identity second = handshakes.secondary();
        if (second != null && Key.of(second.publicKey()).equals(config.publicKey())) {
            throw new IllegalArgumentException("a peer cannot have the device's secondary public key");
        }
        Peer p = peers.computeIfAbsent(config.publicKey(), k -> {
            Peer np = new Peer(k, indices, timing, counters.adder(Counters.Event.DH_OPERATION));
            synchronized (np) {
                np.handshake.useIdentity(id);
            }
            return np;
        });
        synchronized (p) {
            if (config.presharedKey() != null) {
                p.handshake.setPresharedKey(config.presharedKey(), id);
            }
        }
        if (config.endpoint() != null) {
            p.setEndpoint(config.endpoint());
        }
        if (config.persistentKeepalive() != null) {
            p.timers.setPersistentKeepalive((int) config.persistentKeepalive().toSeconds(), clock.nanoTime());
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
        indices.removeAll(p);
        p.remove();
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
                psk = !p.handshake.presharedKey().isZero();
            }
            List<Prefix> ips = allowedIps.entriesOf(p).stream()
                    .map(e -> new Prefix(e.address(), e.prefixLength())).toList();
            out.add(new PeerStatus(p.publicKey(), psk, p.endpoint(), p.lastHandshake(), p.txBytes.sum(),
                    p.rxBytes.sum(), Duration.ofSeconds(p.timers.persistentKeepaliveSeconds()), ips));
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
            return p.handshake.presharedKey();
        }
    }

    public DeviceStats stats() {
        return counters.snapshot(peers.size(), indices.size());
    }

    /** Entries in the index table (sessions and handshakes in flight): must stay bounded. */
    public int indexTableSize() {
        return indices.size();
    }

    // ---------------------------------------------------------------- the data path

    /**
     * Runs encryption and decryption on {@code p}'s workers, each peer's packets through its own
     * ordered lanes (see {@link OrderedPipeline}); without one (tests) everything runs inline on the
     * calling thread. Batches of fewer than {@code inlineBelow} packets for a lane with nothing
     * pending run inline on the reader (no hand-off for light traffic). Set once, before traffic.
     */
    public void usePipeline(OrderedPipeline p, int inlineBelow) {
        batches.usePipeline(p, inlineBelow);
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
        send.queueFromTun(r, b, off, len);
    }

    /** Hands every batch of round {@code r} to the pipeline (or processes it inline). */
    public void submit(Round r) {
        send.submitAll(r);
        receive.submitAll(r);
    }

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
        receive.receive(r, b, len, source);
    }

    /** Packets dropped because a peer's lane was full or closed. */
    public long droppedPackets() {
        return counters.sum(Counters.Event.DROPPED_PACKET);
    }

    // ---------------------------------------------------------------- handshakes and timers

    /** Handshake messages waiting: what {@link #processHandshake} will consume. */
    public int pendingHandshakes() {
        return handshakes.pending();
    }

    /**
     * Consumes one queued handshake message, waiting up to {@code timeoutMillis} for one. Returns
     * false when none came.
     */
    public boolean processHandshake(long timeoutMillis) throws InterruptedException {
        return handshakes.process(timeoutMillis);
    }

    /** Fires every due timer of every peer; the shell calls this a few times per second. */
    public void tick() {
        for (Peer p : peers.values()) {
            long now = clock.nanoTime();
            Set<PeerTimers.Timer> due = p.timers.expired(now);
            if (due.isEmpty()) {
                continue;
            }
            if (due.contains(PeerTimers.Timer.RETRANSMIT)) {
                handshakes.retransmit(p, now);
            }
            if (due.contains(PeerTimers.Timer.KEEPALIVE) || due.contains(PeerTimers.Timer.PERSISTENT_KEEPALIVE)) {
                send.keepalive(p);
            }
            if (due.contains(PeerTimers.Timer.NEW_HANDSHAKE)) {
                handshakes.initiate(p, false);
            }
            if (due.contains(PeerTimers.Timer.ZERO_KEYS)) {
                p.zeroKeys();
            }
        }
    }

    /** Wipes every secret (device closed). */
    public synchronized void destroy() {
        removeAllPeers();
        setPrivateKey(null);
        indices.clear();
        handshakes.clear();
    }
}
