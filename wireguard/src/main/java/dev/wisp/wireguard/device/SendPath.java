package dev.wisp.wireguard.device;

import static dev.wisp.wireguard.noise.Messages.TRANSPORT_COUNTER;
import static dev.wisp.wireguard.noise.Messages.TRANSPORT_HEADER_LEN;
import static dev.wisp.wireguard.noise.Messages.TRANSPORT_RECEIVER;
import static dev.wisp.wireguard.noise.Messages.TYPE_TRANSPORT;
import static dev.wisp.wireguard.noise.Messages.putInt;
import static dev.wisp.wireguard.noise.Messages.putLong;

import dev.wisp.wireguard.crypto.ChaChaPoly;
import dev.wisp.wireguard.noise.Keypair;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.List;

/**
 * The path of a packet from the TUN side to the wire (the idea of wireguard-go's send.go): find the
 * peer by destination in the allowed IPs, stage the packet and start a handshake when no session is
 * usable, otherwise pad it into the peer's batch of the round; at submission take the counters in
 * order and hand the batch to the peer's outbound lane; once sealed, send it in order.
 *
 * <p>Threads: {@link #queueFromTun} on any number of reader threads, each with its own
 * {@link DeviceCore.Round}; {@link #submit} under the peer's {@link Peer#sendLock};
 * {@link #finish} on the peer's outbound sequencer (or inline).
 */
final class SendPath {
    private static final byte[] EMPTY = new byte[0];

    private final Engine engine;
    private final Clock clock;
    private final Timing timing;
    private final Batches batches;
    private final HandshakeProcessor handshakes;
    private volatile int mtu = 1420;

    SendPath(Engine engine, Batches batches, HandshakeProcessor handshakes) {
        this.engine = engine;
        this.clock = engine.clock();
        this.timing = engine.timing();
        this.batches = batches;
        this.handshakes = handshakes;
    }

    void setMtu(int mtu) {
        this.mtu = mtu;
    }

    /** See {@link DeviceCore#queueFromTun}. */
    void queueFromTun(DeviceCore.Round r, byte[] b, int off, int len) {
        if (len < 1) {
            return;
        }
        Peer peer = engine.allowedIps().lookupDestination(b, off, len);
        if (peer == null) {
            peer = handshakes.peerForUnroutedPacket(b, off, len);
        }
        if (peer == null) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        queue(r, peer, b, off, len, true);
    }

    private boolean usable(Keypair k, long now) {
        return k != null && now - k.createdNanos() < timing.rejectAfter()
                && Long.compareUnsigned(k.sentCount(), timing.rejectAfterMessages()) < 0;
    }

    /**
     * Adds {@code len} plaintext bytes at {@code b[off]} for {@code peer} to round {@code r} (0 = a
     * keepalive). {@code stage} keeps the packet for later when no session is usable. The counter is
     * taken at {@link #submit}.
     */
    private void queue(DeviceCore.Round r, Peer peer, byte[] b, int off, int len, boolean stage) {
        long now = clock.nanoTime();
        Keypair k = peer.keypairs.current();
        InetSocketAddress ep = peer.endpoint();
        if (!usable(k, now) || ep == null) {
            if (stage && len > 0) {
                peer.stage(b, off, len);
            }
            if (ep != null) {
                handshakes.initiate(peer, false);
            }
            return;
        }
        int padded = paddedLength(len);
        TransportBatch t = r.out.get(peer);
        if (t != null && (!t.fits(padded) || !ep.equals(t.endpoint))) {
            r.out.remove(peer);
            submit(t);
            t = null;
        }
        if (t == null) {
            t = batches.obtain(peer, true);
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
        peer.timers.authenticatedPacketSent(now);
        if (len > 0) {
            peer.timers.dataSent(now);
            if (k.initiator() && now - k.createdNanos() >= timing.rekeyAfter()) {
                handshakes.initiate(peer, false);
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

    /**
     * Takes the batch's send counters and queues it on the peer's lane under the peer's send lock:
     * counters of a keypair go out in increasing order although workers seal them in any order.
     */
    void submit(TransportBatch t) {
        Peer peer = t.peer;
        boolean rekey = false;
        synchronized (peer.sendLock) {
            byte[] b = t.buf;
            for (int i = 0; i < t.count; i++) {
                Keypair k = t.keypair[i];
                long counter = k.nextCounter();
                if (Long.compareUnsigned(counter, timing.rejectAfterMessages()) >= 0) {
                    t.len[i] = -1;
                    rekey = true;
                    continue;
                }
                if (t.plain[i] > 0 && k.initiator()
                        && Long.compareUnsigned(counter, timing.rekeyAfterMessages()) >= 0) {
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
            batches.dispatch(t);
        }
        if (rekey) {
            handshakes.initiate(peer, false);
        }
    }

    /** In order, on the peer's sequencer: sends the sealed datagrams. */
    void finish(TransportBatch t) {
        engine.io().sendUdp(t.endpoint, t.buf, t.off, t.len, t.count);
        long bytes = 0;
        for (int i = 0; i < t.count; i++) {
            bytes += Math.max(0, t.len[i]);
        }
        t.peer.txBytes.add(bytes);
        batches.release(t);
    }

    /** Sends what waited for a session, or else a keepalive that confirms the session to the peer. */
    void flushOrConfirm(Peer peer) {
        if (!flushStaged(peer)) {
            keepalive(peer);
        }
    }

    /** Sends the staged packets; false when there were none. */
    boolean flushStaged(Peer peer) {
        List<byte[]> packets = peer.takeStaged();
        if (packets.isEmpty()) {
            return false;
        }
        DeviceCore.Round r = new DeviceCore.Round();
        for (byte[] p : packets) {
            queue(r, peer, p, 0, p.length, true);
            Arrays.fill(p, (byte) 0);
        }
        submitAll(r);
        return true;
    }

    void keepalive(Peer peer) {
        DeviceCore.Round r = new DeviceCore.Round();
        queue(r, peer, EMPTY, 0, 0, false);
        submitAll(r);
    }

    /** Submits every outbound batch of {@code r}. */
    void submitAll(DeviceCore.Round r) {
        if (!r.out.isEmpty()) {
            for (TransportBatch t : r.out.values()) {
                submit(t);
            }
            r.out.clear();
        }
    }
}
