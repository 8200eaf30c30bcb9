package dev.wisp.wireguard.noise;

import java.util.concurrent.atomic.AtomicLong;
import javax.crypto.spec.SecretKeySpec;

/**
 * One session's transport keys: the sending key with its counter, the receiving key with its
 * replay window, the indices, and when it was made. The send counter is atomic (any sender thread
 * may take the next one); the replay window is guarded by this object's monitor.
 */
public final class Keypair {
    private final byte[] sendKey;
    private final byte[] receiveKey;
    private final SecretKeySpec sendSpec;
    private final SecretKeySpec receiveSpec;
    private final boolean initiator;
    private final long createdNanos;
    private final int localIndex;
    private final int remoteIndex;
    private final AtomicLong sendCounter = new AtomicLong();
    /** Guarded by {@code this}. */
    private final ReplayWindow window = new ReplayWindow();

    public Keypair(byte[] sendKey, byte[] receiveKey, boolean initiator, long createdNanos, int localIndex,
            int remoteIndex) {
        this.sendKey = sendKey;
        this.receiveKey = receiveKey;
        this.sendSpec = new SecretKeySpec(sendKey, "ChaCha20");
        this.receiveSpec = new SecretKeySpec(receiveKey, "ChaCha20");
        this.initiator = initiator;
        this.createdNanos = createdNanos;
        this.localIndex = localIndex;
        this.remoteIndex = remoteIndex;
    }

    public SecretKeySpec sendKey() {
        return sendSpec;
    }

    public SecretKeySpec receiveKey() {
        return receiveSpec;
    }

    public boolean initiator() {
        return initiator;
    }

    public long createdNanos() {
        return createdNanos;
    }

    public int localIndex() {
        return localIndex;
    }

    public int remoteIndex() {
        return remoteIndex;
    }

    /** The next sending counter (starting at 0). */
    public long nextCounter() {
        return sendCounter.getAndIncrement();
    }

    public long sentCount() {
        return sendCounter.get();
    }

    /** Checks and records a received, authenticated counter; false for a replay. */
    public synchronized boolean acceptCounter(long counter, long limit) {
        return window.accept(counter, limit);
    }

    /**
     * Zeroes the raw key bytes. The JDK's {@link SecretKeySpec} keeps its own copy, which it offers
     * no way to clear; dropping every reference to it is the best the JCA allows.
     */
    public void wipe() {
        java.util.Arrays.fill(sendKey, (byte) 0);
        java.util.Arrays.fill(receiveKey, (byte) 0);
    }
}
