package dev.wisp.wireguard.device;

import dev.wisp.wireguard.DeviceStats;
import java.util.concurrent.atomic.LongAdder;

/** The device's event counters, shared by its paths; any thread may count. */
final class Counters {
    /** What is counted: the figures of {@link DeviceStats}, and dropped packets. */
    enum Event {
        DH_OPERATION, BAD_MAC1, COOKIE_REPLY_SENT, RATE_LIMITED, HANDSHAKE_COMPLETED, INVALID, DATAGRAM,
        /** A packet of a batch that a full or closed lane dropped. */
        DROPPED_PACKET
    }

    private final LongAdder[] adders = new LongAdder[Event.values().length];

    Counters() {
        for (int i = 0; i < adders.length; i++) {
            adders[i] = new LongAdder();
        }
    }

    void count(Event e) {
        adders[e.ordinal()].increment();
    }

    void add(Event e, long n) {
        adders[e.ordinal()].add(n);
    }

    long sum(Event e) {
        return adders[e.ordinal()].sum();
    }

    /** The adder itself, for code outside the device package that counts one event. */
    LongAdder adder(Event e) {
        return adders[e.ordinal()];
    }

    DeviceStats snapshot(int peers, int indices) {
        return new DeviceStats(sum(Event.DH_OPERATION), sum(Event.BAD_MAC1), sum(Event.COOKIE_REPLY_SENT),
                sum(Event.RATE_LIMITED), sum(Event.HANDSHAKE_COMPLETED), sum(Event.INVALID), sum(Event.DATAGRAM),
                peers, indices, sum(Event.DROPPED_PACKET));
    }
}
