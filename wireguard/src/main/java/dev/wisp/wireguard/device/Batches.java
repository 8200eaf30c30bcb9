package dev.wisp.wireguard.device;

import static dev.wisp.wireguard.noise.Messages.TRANSPORT_HEADER_LEN;

import dev.wisp.wireguard.crypto.ChaChaPoly;
import dev.wisp.wireguard.noise.Keypair;
import java.util.concurrent.ArrayBlockingQueue;

/**
 * What the send and receive paths share to move {@link TransportBatch}es: the pool of reusable
 * batches, the crypto step the pipeline's workers run ({@link #crypt}), each peer's lanes, and the
 * choice of running a batch inline or handing it to the pipeline ({@link #dispatch}).
 *
 * <p>Threads: any. The pool is a concurrent queue; each worker thread has its own AEAD instance.
 * {@link #usePipeline} is set once, before traffic.
 */
final class Batches {
    /** Batches a peer's lane may hold per direction; see {@link OrderedPipeline}. */
    static final int LANE_CAPACITY = 128;

    /** Where batches are finished, in order: the send and the receive path. */
    interface Finisher {
        /** Sends the sealed datagrams of an outbound batch. */
        void sealed(TransportBatch t);

        /** Delivers the opened packets of an inbound batch to {@code tun}. */
        void opened(TransportBatch t, Io.TunStream tun);
    }

    private final ArrayBlockingQueue<TransportBatch> free = new ArrayBlockingQueue<>(256);
    private final ThreadLocal<ChaChaPoly> aeads = ThreadLocal.withInitial(ChaChaPoly::new);
    private final Engine engine;
    private final Finisher finisher;
    /** Set once, before traffic; without a pipeline everything runs inline on the calling thread. */
    private volatile Pipelined pipelined;

    /** The pipeline, and below how many packets a batch for an idle lane runs inline. */
    private record Pipelined(OrderedPipeline pipeline, int inlineBelow) {}

    Batches(Engine engine, Finisher finisher) {
        this.engine = engine;
        this.finisher = finisher;
    }

    void usePipeline(OrderedPipeline p, int inlineBelow) {
        this.pipelined = p == null ? null : new Pipelined(p, inlineBelow);
    }

    TransportBatch obtain(Peer peer, boolean outbound) {
        TransportBatch t = free.poll();
        if (t == null) {
            t = new TransportBatch(this);
        }
        t.start(peer, outbound);
        return t;
    }

    void release(TransportBatch t) {
        t.clear();
        free.offer(t);
    }

    /** A batch the pipeline dropped (full or closed lane): counted, its plaintext zeroed. */
    void drop(TransportBatch t) {
        engine.counters().add(Counters.Event.DROPPED_PACKET, t.count);
        release(t);
    }

    /**
     * Runs {@code t} through its peer's lane: inline on the caller without a pipeline, or when the
     * batch is small and the lane idle; otherwise on the workers, finished in order by the lane.
     */
    void dispatch(TransportBatch t) {
        Pipelined pl = pipelined;
        OrderedPipeline.Lane lane = pl == null ? null : lane(pl.pipeline, t.peer, t.outbound);
        if (lane == null) {
            crypt(t);
            if (t.outbound) {
                finisher.sealed(t);
            } else {
                finisher.opened(t, engine.io().openTunStream());
            }
        } else if (t.count >= pl.inlineBelow || !lane.runInlineIfIdle(t)) {
            lane.submit(t);
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

    /** The peer's lane for one direction, opened on first use; null once the peer is gone. */
    private OrderedPipeline.Lane lane(OrderedPipeline pipeline, Peer peer, boolean outbound) {
        OrderedPipeline.Lane l = peer.lane(outbound);
        return l != null ? l : peer.openLanes(outbound, (p, out) -> openLane(pipeline, p, out));
    }

    private OrderedPipeline.Lane openLane(OrderedPipeline pipeline, Peer peer, boolean out) {
        if (out) {
            return pipeline.newLane("wg-send-" + peer.shortKey(), LANE_CAPACITY,
                    j -> finisher.sealed((TransportBatch) j));
        }
        Io.TunStream tun = engine.io().openTunStream();
        return pipeline.newLane("wg-receive-" + peer.shortKey(), LANE_CAPACITY,
                j -> finisher.opened((TransportBatch) j, tun));
    }
}
