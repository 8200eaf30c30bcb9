package dev.wisp.wireguard.device;

import dev.wisp.wireguard.Key;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;

/**
 * One configured peer, owning its state in small parts, each with the rule that guards it (the
 * shape of wireguard-go's peer): {@link #handshake} (guarded by this peer's monitor),
 * {@link #keypairs} (rotated under the monitor, read lock-free), {@link #timers} (lock-free
 * deadlines), the staged packets and the lanes (guarded by the monitor), the endpoint and the
 * traffic figures (lock-free). Other classes change a peer only through these parts' operations.
 *
 * <p>Lock order: the peer's monitor may be taken while holding {@link #sendLock}, never the
 * reverse. Nothing is sent while the monitor is held.
 */
final class Peer {
    static final int MAX_STAGED = 128;

    /** Changed only by {@link #rekey} (the peer's node rotated its key), under the device's lock. */
    private volatile Key publicKey;
    /** Guarded by this. */
    final PeerHandshake handshake;
    /** Rotated under this; read lock-free by the data path. */
    final Keypairs keypairs;
    /** Lock-free. */
    final PeerTimers timers;
    /**
     * Serialises taking send counters with queueing into the outbound lane, so that counters of one
     * keypair leave in increasing order.
     */
    final Object sendLock = new Object();
    /** Bytes sent to and received from the peer, handshakes included; any thread. */
    final LongAdder txBytes = new LongAdder();
    final LongAdder rxBytes = new LongAdder();

    /** Set by configuration and by roaming (any authenticated packet); read lock-free. */
    private volatile InetSocketAddress endpoint;
    /** Wall time of the last completed handshake; written under this, read lock-free. */
    private volatile Instant lastHandshake;
    /** Our public key in the last completed handshake (the peer knew it then); null before one. */
    private volatile Key handshakeKey;
    /** Guarded by this: plaintext packets waiting for a session. */
    private final ArrayDeque<byte[]> staged = new ArrayDeque<>();
    /** With a pipeline: the ordered lanes; created under this, read lock-free. */
    private volatile OrderedPipeline.Lane outLane;
    private volatile OrderedPipeline.Lane inLane;
    /** Guarded by this: set when the peer leaves the device; no lanes open after. */
    private boolean removed;

    Peer(Key publicKey, IndexTable indices, Timing timing, LongAdder dhOperations) {
        this.publicKey = publicKey;
        this.handshake = new PeerHandshake(this, dhOperations);
        this.keypairs = new Keypairs(this, indices);
        this.timers = new PeerTimers(timing);
    }

    Key publicKey() {
        return publicKey;
    }

    /** The public key's bytes (a fresh copy). */
    byte[] publicKeyBytes() {
        return publicKey.bytes();
    }

    /**
     * The peer's node now has {@code key}: sessions, endpoint, allowed IPs and counters stay (the
     * sessions' keys do not depend on the static keys); the handshake starts over with {@code local}.
     */
    synchronized void rekey(Key key, dev.wisp.wireguard.noise.Identity local) {
        publicKey = key;
        handshake.remoteKeyChanged(local);
    }

    /** Our public key in the last completed handshake with this peer, or null. */
    Key handshakeKey() {
        return handshakeKey;
    }

    InetSocketAddress endpoint() {
        return endpoint;
    }

    void setEndpoint(InetSocketAddress endpoint) {
        this.endpoint = endpoint;
    }

    /** Roaming: an authenticated packet from {@code source} moves the endpoint there. */
    void roamTo(InetSocketAddress source) {
        InetSocketAddress ep = endpoint;
        if (ep == null || !ep.equals(source)) {
            endpoint = source;
        }
    }

    Instant lastHandshake() {
        return lastHandshake;
    }

    /**
     * A handshake completed at wall time {@code at} with the peer now at {@code source}, with our
     * static key {@code ours}.
     */
    void handshakeCompleted(Instant at, InetSocketAddress source, dev.wisp.wireguard.noise.Identity ours) {
        assert Thread.holdsLock(this);
        endpoint = source;
        lastHandshake = at;
        handshakeKey = Key.of(ours.publicKey());
    }

    /** Keeps a copy of a packet until a session exists; the oldest goes when the queue is full. */
    synchronized void stage(byte[] b, int off, int len) {
        if (staged.size() >= MAX_STAGED) {
            Arrays.fill(staged.pollFirst(), (byte) 0);
        }
        staged.addLast(Arrays.copyOfRange(b, off, off + len));
    }

    /** Takes every staged packet (the caller zeroes each once sent), or an empty list. */
    synchronized List<byte[]> takeStaged() {
        if (staged.isEmpty()) {
            return List.of();
        }
        List<byte[]> out = new ArrayList<>(staged);
        staged.clear();
        return out;
    }

    /** Drops the staged packets, their bytes zeroed. */
    synchronized void clearStaged() {
        for (byte[] p : staged) {
            Arrays.fill(p, (byte) 0);
        }
        staged.clear();
    }

    /** This peer's lane for one direction, or null before {@link #openLanes}. */
    OrderedPipeline.Lane lane(boolean outbound) {
        return outbound ? outLane : inLane;
    }

    /** Opens both lanes with {@code opener} unless open already; null once the peer is removed. */
    synchronized OrderedPipeline.Lane openLanes(boolean outbound, LaneOpener opener) {
        if (removed) {
            return null;
        }
        if (outLane == null) {
            outLane = opener.open(this, true);
        }
        if (inLane == null) {
            inLane = opener.open(this, false);
        }
        return outbound ? outLane : inLane;
    }

    /** Makes one of a peer's lanes. */
    interface LaneOpener {
        OrderedPipeline.Lane open(Peer peer, boolean outbound);
    }

    /** Zeroes the key material (the zero-keys timer, a new private key): sessions and handshake. */
    synchronized void zeroKeys() {
        keypairs.clear();
        handshake.wipeState();
    }

    /**
     * The peer leaves the device: its lanes close (their queued batches dropped) and every secret
     * it holds is wiped. The lanes close outside the monitor, since their sequencers may need it.
     */
    void remove() {
        OrderedPipeline.Lane out;
        OrderedPipeline.Lane in;
        synchronized (this) {
            removed = true;
            out = outLane;
            in = inLane;
            outLane = null;
            inLane = null;
        }
        if (out != null) {
            out.close();
        }
        if (in != null) {
            in.close();
        }
        synchronized (this) {
            keypairs.clear();
            handshake.destroy();
            clearStaged();
        }
    }

    /** The first characters of the public key, for logs. */
    String shortKey() {
        return publicKey().toBase64().substring(0, 8) + "…";
    }
}
