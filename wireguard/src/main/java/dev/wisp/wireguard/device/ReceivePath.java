package dev.wisp.wireguard.device;

import static dev.wisp.wireguard.noise.Messages.TRANSPORT_COUNTER;
import static dev.wisp.wireguard.noise.Messages.TRANSPORT_HEADER_LEN;
import static dev.wisp.wireguard.noise.Messages.TRANSPORT_MIN_LEN;
import static dev.wisp.wireguard.noise.Messages.TRANSPORT_RECEIVER;
import static dev.wisp.wireguard.noise.Messages.TYPE_COOKIE_REPLY;
import static dev.wisp.wireguard.noise.Messages.TYPE_INITIATION;
import static dev.wisp.wireguard.noise.Messages.TYPE_RESPONSE;
import static dev.wisp.wireguard.noise.Messages.TYPE_TRANSPORT;
import static dev.wisp.wireguard.noise.Messages.getInt;
import static dev.wisp.wireguard.noise.Messages.getLong;
import static dev.wisp.wireguard.noise.Messages.type;

import dev.wisp.wireguard.crypto.ChaChaPoly;
import dev.wisp.wireguard.noise.Keypair;
import java.net.InetSocketAddress;

/**
 * The path of a datagram from the wire to the TUN side (the idea of wireguard-go's receive.go):
 * handshake messages and cookie replies go to the {@link HandshakeProcessor}; transport data finds
 * its session in the {@link IndexTable} and joins the peer's batch of the round; once opened, in
 * order: the replay check, session confirmation, roaming, timers, the allowed-IPs check of the
 * inner source and the TUN write.
 *
 * <p>Threads: {@link #receive} on any number of reader threads, each with its own
 * {@link DeviceCore.Round}; {@link #finish} on the peer's inbound sequencer (or inline).
 */
final class ReceivePath {
    private final Engine engine;
    private final Batches batches;
    private final HandshakeProcessor handshakes;
    private final SendPath send;

    ReceivePath(Engine engine, Batches batches, HandshakeProcessor handshakes, SendPath send) {
        this.engine = engine;
        this.batches = batches;
        this.handshakes = handshakes;
        this.send = send;
    }

    /** See {@link DeviceCore#receiveUdp(DeviceCore.Round, byte[], int, InetSocketAddress)}. */
    void receive(DeviceCore.Round r, byte[] b, int len, InetSocketAddress source) {
        engine.count(Counters.Event.DATAGRAM);
        int type = type(b, 0, len);
        switch (type) {
            case TYPE_TRANSPORT -> queueTransport(r, b, len, source);
            case TYPE_INITIATION, TYPE_RESPONSE -> handshakes.offer(b, len, type, source);
            case TYPE_COOKIE_REPLY -> handshakes.consumeCookieReply(b, len);
            default -> engine.count(Counters.Event.INVALID);
        }
    }

    private void queueTransport(DeviceCore.Round r, byte[] b, int len, InetSocketAddress source) {
        if (len < TRANSPORT_MIN_LEN || len > DeviceCore.SCRATCH_SIZE
                || !(engine.indices().get(getInt(b, TRANSPORT_RECEIVER)) instanceof IndexTable.Session session)) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        Keypair k = session.keypair();
        Peer peer = session.peer();
        if (engine.clock().nanoTime() - k.createdNanos() >= engine.timing().rejectAfter()) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        TransportBatch t = r.in.get(peer);
        if (t != null && !t.fits(len)) {
            r.in.remove(peer);
            batches.dispatch(t);
            t = null;
        }
        if (t == null) {
            t = batches.obtain(peer, false);
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

    /** Dispatches every inbound batch of {@code r}. */
    void submitAll(DeviceCore.Round r) {
        if (!r.in.isEmpty()) {
            for (TransportBatch t : r.in.values()) {
                batches.dispatch(t);
            }
            r.in.clear();
        }
    }

    /** In order, on the peer's inbound sequencer: delivers each opened packet, then flushes the TUN. */
    void finish(TransportBatch t, Io.TunStream tun) {
        for (int i = 0; i < t.count; i++) {
            int n = t.len[i];
            int wireLen = n < 0 ? 0 : TRANSPORT_HEADER_LEN + n + ChaChaPoly.TAG_LEN;
            deliver(t.peer, t.keypair[i], t.buf, t.off[i] + TRANSPORT_HEADER_LEN, n, wireLen, t.counter[i],
                    t.source[i], tun);
        }
        tun.flush();
        batches.release(t);
    }

    /**
     * One opened transport packet ({@code n} plaintext bytes at {@code b[off]}, or -1). The replay
     * check runs here, after decryption, since only authenticated counters may move the window.
     */
    private void deliver(Peer peer, Keypair k, byte[] b, int off, int n, int wireLen, long counter,
            InetSocketAddress source, Io.TunStream tun) {
        if (n < 0 || !k.acceptCounter(counter, engine.timing().rejectAfterMessages())) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        long now = engine.clock().nanoTime();
        if (peer.keypairs.next() == k) {
            confirm(peer, k);
        }
        peer.roamTo(source);
        peer.rxBytes.add(wireLen);
        peer.timers.authenticatedPacketReceived(now);
        if (k == peer.keypairs.current() && k.initiator()
                && now - k.createdNanos() >= engine.timing().rejectAfter() - engine.timing().keepaliveTimeout()
                        - engine.timing().rekeyTimeout()) {
            boolean first;
            synchronized (peer) {
                first = peer.handshake.requestRekeyOnReceive();
            }
            if (first) {
                handshakes.initiate(peer, false);
            }
        }
        if (n == 0) {
            return;
        }
        peer.timers.dataReceived(now);
        int ipLen = ipTotalLength(b, off, n);
        if (ipLen < 0 || ipLen > n || engine.allowedIps().lookupSource(b, off, n) != peer) {
            engine.count(Counters.Event.INVALID);
            return;
        }
        tun.write(b, off, ipLen);
    }

    /** The responder's new session is confirmed by the initiator's first packet under it. */
    private void confirm(Peer peer, Keypair k) {
        synchronized (peer) {
            if (!peer.keypairs.confirm(k)) {
                return;
            }
            peer.timers.handshakeCompleted();
            peer.handshake.completed();
        }
        send.flushStaged(peer);
    }

    /** The IP packet's length from its header, or -1 when it is not an IPv4 or IPv6 header. */
    private static int ipTotalLength(byte[] b, int off, int n) {
        int version = (b[off] & 0xff) >>> 4;
        if (version == 4 && n >= 20) {
            return (b[off + 2] & 0xff) << 8 | (b[off + 3] & 0xff);
        }
        if (version == 6 && n >= 40) {
            return 40 + ((b[off + 4] & 0xff) << 8 | (b[off + 5] & 0xff));
        }
        return -1;
    }
}
