package dev.wisp.wireguard;

/**
 * Device-wide counters (monotonic since creation): what the data path did and what it refused.
 *
 * @param dhOperations X25519 operations performed (handshake cost)
 * @param badMac1 handshake messages dropped for an invalid mac1 before any DH
 * @param cookieRepliesSent cookie replies sent while under load
 * @param rateLimited handshake messages dropped by the per-source rate limit
 * @param handshakesCompleted sessions derived
 * @param invalidPackets packets dropped as malformed, unauthenticated, replayed or misrouted
 * @param datagramsReceived datagrams handed to the engine
 * @param peers peers configured now
 * @param indexEntries sessions and handshakes in the receiver-index table now
 * @param droppedPackets packets dropped because a peer's lane was full or closed (overload)
 */
public record DeviceStats(long dhOperations, long badMac1, long cookieRepliesSent, long rateLimited,
        long handshakesCompleted, long invalidPackets, long datagramsReceived, int peers, int indexEntries,
        long droppedPackets) {}
