package dev.wisp.wireguard.device;

import dev.wisp.wireguard.noise.Keypair;

/**
 * A peer's sessions (the idea of wireguard-go's keypair.go): {@code current} sends, {@code previous}
 * still opens what was in flight when it was replaced, {@code next} is the session we derived as
 * responder, unused for sending until the initiator's first packet under it confirms it.
 *
 * <p>Lock discipline: the data path reads the volatile references without locking; every rotation
 * runs under the owning peer's monitor (asserted) and keeps the {@link IndexTable} in step: a
 * keypair that leaves is removed from the table and its key bytes are zeroed.
 */
final class Keypairs {
    private final Peer owner;
    private final IndexTable indices;
    /** Sends; written under the owner's monitor like the two below, read lock-free. */
    private volatile Keypair current;
    /** Still opens packets that were in flight when it was replaced. */
    private volatile Keypair previous;
    /** Derived as responder, not yet confirmed by the initiator's first packet. */
    private volatile Keypair next;

    Keypairs(Peer owner, IndexTable indices) {
        this.owner = owner;
        this.indices = indices;
    }

    Keypair current() {
        return current;
    }

    Keypair next() {
        return next;
    }

    /** As responder: the new session waits as {@code next}; an older next and the previous go. */
    void derivedAsResponder(Keypair k) {
        assert Thread.holdsLock(owner);
        indices.install(owner, k);
        Keypair oldNext = next;
        Keypair oldPrevious = previous;
        next = k;
        previous = null;
        drop(oldNext);
        drop(oldPrevious);
    }

    /**
     * As initiator: the new session sends at once. An unconfirmed {@code next} becomes the previous
     * (the responder may already use it), otherwise the current one does.
     */
    void derivedAsInitiator(Keypair k) {
        assert Thread.holdsLock(owner);
        indices.install(owner, k);
        Keypair oldPrevious = previous;
        Keypair oldNext = next;
        if (oldNext != null) {
            previous = oldNext;
            drop(current);
        } else {
            previous = current;
        }
        next = null;
        drop(oldPrevious);
        current = k;
    }

    /** The initiator sent under {@code k}: if it is still {@code next}, it becomes current. */
    boolean confirm(Keypair k) {
        assert Thread.holdsLock(owner);
        if (next != k) {
            return false;
        }
        Keypair old = previous;
        previous = current;
        current = k;
        next = null;
        drop(old);
        return true;
    }

    /** Drops all three sessions. */
    void clear() {
        assert Thread.holdsLock(owner);
        drop(current);
        drop(previous);
        drop(next);
        current = null;
        previous = null;
        next = null;
    }

    private void drop(Keypair k) {
        if (k != null) {
            indices.remove(k);
            k.wipe();
        }
    }
}
