package dev.wisp.wireguard.device;

import dev.wisp.wireguard.routing.AllowedIps;

/**
 * What every path of one device shares: its clock and output, the protocol's timings, the
 * counters, the index table and the cryptokey routing table. Built once by {@link DeviceCore}.
 */
record Engine(Clock clock, Io io, Timing timing, Counters counters, IndexTable indices,
        AllowedIps<Peer> allowedIps) {
    void count(Counters.Event e) {
        counters.count(e);
    }
}
