package dev.wisp.wireguard.device;

import dev.wisp.wireguard.noise.Keypair;
import java.security.SecureRandom;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The receiver indices this device has handed out, each naming what a message addressed to it is
 * for (wireguard-go's indextable.go idea): a {@link Handshaking} entry waits for a response to our
 * initiation, a {@link Session} for transport data under one keypair. A lookup finds a typed entry,
 * never an object to test with {@code instanceof} chains. Concurrent: any thread.
 */
final class IndexTable {
    /** What an index stands for; every entry belongs to one peer. */
    sealed interface Entry permits Handshaking, Session {
        Peer peer();
    }

    /** Our initiation is out with this index as its sender: a response to it may come. */
    record Handshaking(Peer peer) implements Entry {}

    /** A keypair whose receiving side is this index. */
    record Session(Peer peer, Keypair keypair) implements Entry {}

    private final Map<Integer, Entry> entries = new ConcurrentHashMap<>();
    private final SecureRandom random = new SecureRandom();

    /** A fresh random index, reserved for {@code peer}'s handshake. */
    int reserve(Peer peer) {
        Handshaking entry = new Handshaking(peer);
        while (true) {
            int i = random.nextInt();
            if (entries.putIfAbsent(i, entry) == null) {
                return i;
            }
        }
    }

    /** Frees an index {@link #reserve}d for {@code peer} whose handshake will not complete. */
    void release(int index, Peer peer) {
        entries.remove(index, new Handshaking(peer));
    }

    /** Makes {@code keypair}'s local index (reserved for this peer's handshake) name the session. */
    void install(Peer peer, Keypair keypair) {
        entries.put(keypair.localIndex(), new Session(peer, keypair));
    }

    /** Removes {@code keypair}'s session entry, if it is still the one at its index. */
    void remove(Keypair keypair) {
        entries.computeIfPresent(keypair.localIndex(),
                (i, e) -> e instanceof Session s && s.keypair() == keypair ? null : e);
    }

    /** Every entry of {@code peer} (peer removed). */
    void removeAll(Peer peer) {
        entries.values().removeIf(e -> e.peer() == peer);
    }

    /** The entry at {@code index}, or null. */
    Entry get(int index) {
        return entries.get(index);
    }

    int size() {
        return entries.size();
    }

    void clear() {
        entries.clear();
    }
}
