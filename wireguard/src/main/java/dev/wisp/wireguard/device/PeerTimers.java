package dev.wisp.wireguard.device;

import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A peer's five protocol timers (the idea of wireguard-go's timers.go): each a deadline in clock
 * nanoseconds, 0 when not armed. The send, receive and handshake paths report events
 * ({@link #dataSent}, {@link #authenticatedPacketReceived}, …) and the timers arm or disarm
 * themselves; the device's tick asks {@link #expired} which are due and acts on them.
 *
 * <p>Lock-free: the deadlines are volatile array elements written by whichever data-path thread saw
 * the event, without a lock. A lost race between two writers only moves a deadline by one packet,
 * which the protocol tolerates; reads before writes keep the common case ("already armed") free of
 * stores.
 */
final class PeerTimers {
    /** The timers, named by what the device does when one expires. */
    enum Timer {
        /** Resend the initiation: armed when one goes out, disarmed by the completed handshake. */
        RETRANSMIT,
        /** Answer received data with a keepalive if we send nothing meanwhile. */
        KEEPALIVE,
        /** Sent data and heard nothing back for KEEPALIVE + REKEY_TIMEOUT: start a new handshake. */
        NEW_HANDSHAKE,
        /** The configured keepalive, rearmed by every authenticated packet. */
        PERSISTENT_KEEPALIVE,
        /** Zero the key material once no handshake has renewed it for three REJECT_AFTER_TIMEs. */
        ZERO_KEYS
    }

    private static final Timer[] TIMERS = Timer.values();
    private static final long SECOND = 1_000_000_000L;

    private final Timing timing;
    private final AtomicLongArray deadlines = new AtomicLongArray(TIMERS.length);
    /** Seconds, 0 = off; written by configuration, read by the data path. */
    private volatile int persistentKeepaliveSeconds;

    PeerTimers(Timing timing) {
        this.timing = timing;
    }

    /** A transport packet (data or keepalive) left for the peer. */
    void authenticatedPacketSent(long now) {
        disarm(Timer.KEEPALIVE);
        authenticatedPacketTraversed(now);
    }

    /** A transport packet carrying data (not a keepalive) left for the peer. */
    void dataSent(long now) {
        armIfIdle(Timer.NEW_HANDSHAKE, now + timing.keepaliveTimeout() + timing.rekeyTimeout());
    }

    /** An authenticated transport packet arrived from the peer. */
    void authenticatedPacketReceived(long now) {
        disarm(Timer.NEW_HANDSHAKE);
        authenticatedPacketTraversed(now);
    }

    /** A transport packet carrying data arrived from the peer. */
    void dataReceived(long now) {
        armIfIdle(Timer.KEEPALIVE, now + timing.keepaliveTimeout());
    }

    private void authenticatedPacketTraversed(long now) {
        int pk = persistentKeepaliveSeconds;
        if (pk > 0) {
            arm(Timer.PERSISTENT_KEEPALIVE, now + pk * SECOND);
        }
    }

    /** An initiation went out; {@code jitter} nanoseconds spread the retransmissions. */
    void handshakeInitiated(long now, long jitter) {
        arm(Timer.RETRANSMIT, now + timing.rekeyTimeout() + jitter);
    }

    /** Our initiation was answered (or the peer confirmed the session it answered). */
    void handshakeCompleted() {
        disarm(Timer.RETRANSMIT);
    }

    /** New keys were derived, as initiator or responder. */
    void sessionDerived(long now) {
        arm(Timer.ZERO_KEYS, timing.zeroKeysAfter(now));
        disarm(Timer.NEW_HANDSHAKE);
    }

    /** We gave up retransmitting: keys still held go after the usual time unless renewed. */
    void handshakeAbandoned(long now) {
        armIfIdle(Timer.ZERO_KEYS, timing.zeroKeysAfter(now));
    }

    /** Sets the persistent keepalive; turning it on sends one at once, as {@code wg set} does. */
    void setPersistentKeepalive(int seconds, long now) {
        boolean turnedOn = persistentKeepaliveSeconds == 0 && seconds > 0;
        persistentKeepaliveSeconds = seconds;
        if (turnedOn) {
            arm(Timer.PERSISTENT_KEEPALIVE, now);
        } else if (seconds == 0) {
            disarm(Timer.PERSISTENT_KEEPALIVE);
        }
    }

    int persistentKeepaliveSeconds() {
        return persistentKeepaliveSeconds;
    }

    /** Disarms and returns the timers due at {@code now} (an empty set, not allocated, when none). */
    Set<Timer> expired(long now) {
        Set<Timer> due = Set.of();
        for (Timer t : TIMERS) {
            long d = deadlines.get(t.ordinal());
            if (d != 0 && now - d >= 0) {
                disarm(t);
                if (t != Timer.PERSISTENT_KEEPALIVE || persistentKeepaliveSeconds > 0) {
                    if (due.isEmpty()) {
                        due = EnumSet.of(t);
                    } else {
                        due.add(t);
                    }
                }
            }
        }
        return due;
    }

    private void arm(Timer t, long deadline) {
        deadlines.set(t.ordinal(), deadline);
    }

    private void armIfIdle(Timer t, long deadline) {
        if (deadlines.get(t.ordinal()) == 0) {
            arm(t, deadline);
        }
    }

    private void disarm(Timer t) {
        if (deadlines.get(t.ordinal()) != 0) {
            arm(t, 0);
        }
    }
}
