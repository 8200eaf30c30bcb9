package dev.wisp.node.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.WireGuardDevice;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Rotation of the node's WireGuard static key without losing traffic, on demand ({@link #rotate},
 * {@code wisp wireguard rotate}) or every period the control plane sets ({@link #tick}). Sessions
 * never depend on the static keys (they come from ephemeral ones), so a rotation only has to keep
 * every handshake possible; it goes through three phases:
 *
 * <ol>
 *   <li>{@link Phase#PUBLISHING}: a new key is written to the key file (0600) and set as the
 *       device's secondary key (answered, never initiated with); the registration names it from now
 *       on and is sent at once. A peer that learns the key meanwhile can already handshake with it.
 *   <li>{@link Phase#OVERLAP}: this node's own Node resource carries the new key, i.e. the control
 *       plane accepted it and sent it to every agent in the same generation: the device switches to
 *       it (and starts a handshake with each peer), and still answers handshakes to the old key.
 *   <li>Back to {@link Phase#IDLE} when every installed peer completed a handshake with the new key
 *       (it has the key), or after {@link #MAX_OVERLAP} (a peer cut off from the control plane that
 *       long): the old key leaves the device and is wiped.
 * </ol>
 *
 * <p>Threads: the phases change under this object's monitor (the admin endpoint's thread, the
 * {@code wisp-wireguard} thread's syncs and ticks); {@link #published} is read without it (the
 * discovery client reads it under its own lock), and the new key is sent outside it, so the two
 * locks are never held together.
 */
final class KeyRotation {
    private static final Logger LOG = LoggerFactory.getLogger(KeyRotation.class);
    /** The longest the old key is still answered after the switch. */
    static final Duration MAX_OVERLAP = Duration.ofMinutes(10);

    /** Where a rotation stands. */
    enum Phase {
        IDLE, PUBLISHING, OVERLAP
    }

    /**
     * What {@code GET /wireguard} shows.
     *
     * @param publicKey the key the device initiates with
     * @param published the key the node publishes (the new one from the first phase on)
     * @param secondary the device's other key (new while publishing, old during the overlap), or null
     * @param since when the phase began
     * @param waitingFor during the overlap, the peers that have not handshaken with the new key yet
     */
    record Status(Phase phase, Key publicKey, Key published, Key secondary, Instant since, long rotations,
            List<Key> waitingFor) {}

    private final WireGuardDevice device;
    private final Path stateDir;
    private final InstantSource clock;
    private volatile Runnable publish;
    /** The public key the node publishes: the new one from the first phase on. */
    private volatile Key published;
    private Key current;
    private Key next;
    private Phase phase = Phase.IDLE;
    private Instant since;
    private Instant lastRotation;
    private long rotations;
    private List<Key> waitingFor = List.of();

    /**
     * @param current the device's private key now
     * @param keyCreated when it was made (the key file's time), the start of the period
     */
    KeyRotation(WireGuardDevice device, Path stateDir, Key current, Instant keyCreated, InstantSource clock) {
        this.device = requireNonNull(device, "device");
        this.stateDir = requireNonNull(stateDir, "stateDir");
        this.current = requireNonNull(current, "current");
        this.clock = requireNonNull(clock, "clock");
        this.lastRotation = requireNonNull(keyCreated, "keyCreated");
        this.since = clock.instant();
        this.published = current.publicKey();
    }

    /** Sends the registration again now (a new key to publish); without one, rotations are refused. */
    void publishWith(Runnable publish) {
        this.publish = requireNonNull(publish, "publish");
    }

    /** The public key the node publishes. */
    Key published() {
        return published;
    }

    /**
     * Starts a rotation; while one runs, nothing more happens.
     *
     * @return the status after
     * @throws IOException when the new key cannot be written (nothing changed)
     * @throws IllegalStateException when nothing publishes keys (no control plane)
     */
    Status rotate(String why) throws IOException {
        Runnable send = publish;
        if (send == null) {
            throw new IllegalStateException("WireGuard key rotation needs the control plane, which publishes the new "
                    + "key to the other nodes; this agent has none");
        }
        synchronized (this) {
            if (phase != Phase.IDLE) {
                return status();
            }
            Key fresh = Key.generatePrivate();
            // Persisted first: an agent restarted from here on publishes the new key.
            NodeKey.replace(stateDir, fresh);
            device.setSecondaryKey(fresh);
            next = fresh;
            published = fresh.publicKey();
            enter(Phase.PUBLISHING);
            LOG.info("WireGuard key rotation ({}): publishing the new public key {} (still using {})", why, fresh
                    .publicKey().toBase64(), current.publicKey().toBase64());
        }
        send.run();
        return status();
    }

    /**
     * The control plane now sends {@code ownKey} (base64) for this node: when that is the key being
     * published, the device switches to it.
     */
    synchronized void ownKeyIs(String ownKey) {
        if (phase != Phase.PUBLISHING || !next.publicKey().toBase64().equals(ownKey)) {
            return;
        }
        device.swapKeys();
        Key old = current;
        current = next;
        next = null;
        enter(Phase.OVERLAP);
        waitingFor = unconfirmed();
        LOG.info("WireGuard key rotation: the control plane publishes {}; the device uses it now and still answers "
                + "{} until its {} peer(s) have it", current.publicKey().toBase64(), old.publicKey().toBase64(),
                waitingFor.size());
    }

    /**
     * Every second: ends the overlap once every peer has the new key, and starts a rotation when the
     * key is older than {@code period} ({@link Duration#ZERO}: never).
     */
    void tick(Duration period) {
        if (overlapOrDue(period)) {
            try {
                rotate("every " + period.toSeconds() + " s");
            } catch (IOException | RuntimeException e) {
                synchronized (this) {
                    lastRotation = clock.instant();
                }
                LOG.warn("WireGuard key rotation not started: {}; next try in {} s", e.getMessage(), period
                        .toSeconds());
            }
        }
    }

    /** Ends the overlap when it is over; true when a periodic rotation is due. */
    private synchronized boolean overlapOrDue(Duration period) {
        Instant now = clock.instant();
        if (phase == Phase.OVERLAP) {
            waitingFor = unconfirmed();
            boolean expired = !now.isBefore(since.plus(MAX_OVERLAP));
            if (waitingFor.isEmpty() || expired) {
                device.setSecondaryKey(null);
                if (expired && !waitingFor.isEmpty()) {
                    LOG.warn("WireGuard key rotation: {} peer(s) did not handshake with the new key within {}; the old "
                            + "key is dropped anyway (they handshake again once they have the new one)",
                            waitingFor
                                    .size(),
                            MAX_OVERLAP);
                }
                waitingFor = List.of();
                rotations++;
                lastRotation = now;
                enter(Phase.IDLE);
                LOG.info("WireGuard key rotation done: the old key is dropped and wiped; public key {}", current
                        .publicKey().toBase64());
            }
            return false;
        }
        return phase == Phase.IDLE && !period.isZero() && publish != null && !now.isBefore(lastRotation.plus(
                period));
    }

    /** The installed peers whose last handshake was not with the current key. */
    private List<Key> unconfirmed() {
        Map<Key, Key> used = device.handshakeKeys();
        Key ours = current.publicKey();
        List<Key> out = new ArrayList<>();
        for (PeerStatus p : device.peers()) {
            if (!ours.equals(used.get(p.publicKey()))) {
                out.add(p.publicKey());
            }
        }
        return out;
    }

    private void enter(Phase p) {
        phase = p;
        since = clock.instant();
    }

    synchronized Status status() {
        return new Status(phase, current.publicKey(), published, device.secondaryPublicKey(), since, rotations, List
                .copyOf(waitingFor));
    }
}
