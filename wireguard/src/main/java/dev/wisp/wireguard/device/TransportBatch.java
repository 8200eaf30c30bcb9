package dev.wisp.wireguard.device;

import dev.wisp.wireguard.noise.Keypair;
import java.net.InetSocketAddress;
import java.util.Arrays;

/**
 * Transport packets of one peer and one direction, packed into one buffer: the unit that the
 * {@link OrderedPipeline} encrypts or decrypts in parallel. Outbound, each slot holds the transport
 * header (counter filled at submission) and the padded plaintext, sealed in place by a worker;
 * inbound, each slot holds a received datagram, opened in place by a worker, with its keypair and
 * source. Plain fields: the submitting thread writes them before the pipeline's queues publish the
 * batch, the worker's completion publishes its results to the sequencer.
 */
final class TransportBatch extends OrderedPipeline.Job {
    static final int MAX_PACKETS = 64;
    /** Room for two full-size (64 KiB) packets, or MAX_PACKETS of MTU size. */
    static final int CAPACITY = 2 * DeviceCore.SCRATCH_SIZE;

    final Batches pool;
    final byte[] buf = new byte[CAPACITY];
    final int[] off = new int[MAX_PACKETS];
    /** Outbound: padded plaintext, then datagram length; inbound: datagram, then plaintext or -1. */
    final int[] len = new int[MAX_PACKETS];
    /** Outbound: plaintext length before padding (0 = keepalive). */
    final int[] plain = new int[MAX_PACKETS];
    final long[] counter = new long[MAX_PACKETS];
    final Keypair[] keypair = new Keypair[MAX_PACKETS];
    final InetSocketAddress[] source = new InetSocketAddress[MAX_PACKETS];
    boolean outbound;
    Peer peer;
    /** Outbound: where the batch goes. */
    InetSocketAddress endpoint;
    int count;
    int used;

    TransportBatch(Batches pool) {
        this.pool = pool;
    }

    void start(Peer peer, boolean outbound) {
        reset();
        this.peer = peer;
        this.outbound = outbound;
        this.count = 0;
        this.used = 0;
    }

    /** Whether a packet of {@code n} bytes (before header, padding and tag) still fits. */
    boolean fits(int n) {
        return count < MAX_PACKETS && used + n + 64 <= CAPACITY;
    }

    @Override
    protected void work() {
        pool.crypt(this);
    }

    @Override
    protected void dropped() {
        pool.drop(this);
    }

    /** Forgets the references and zeroes the packet bytes (plaintext, outbound). */
    void clear() {
        Arrays.fill(buf, 0, used, (byte) 0);
        Arrays.fill(keypair, 0, count, null);
        Arrays.fill(source, 0, count, null);
        peer = null;
        endpoint = null;
        count = 0;
        used = 0;
    }
}
