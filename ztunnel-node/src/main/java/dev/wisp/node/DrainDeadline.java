package dev.wisp.node;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.IntSupplier;

/**
 * A drain's wait for the agent's carried connections: until none is open or the deadline, then the
 * ones left are reset and counted. Outbound (a client of this node carried to another) and inbound
 * (carried to a workload of this node, over HBONE or plaintext) are counted apart.
 */
final class DrainDeadline {
    /**
     * How much longer than the drain timeout an HBONE connection may take after GOAWAY (HTTP/2's and
     * HTTP/3's own graceful close): the connections still open at the deadline are reset and counted
     * here first, and their HBONE connections then close as their last stream ends.
     */
    static final Duration MARGIN = Duration.ofSeconds(2);
    /** How long HBONE connections may take after GOAWAY: {@link #MARGIN} past the drain timeout. */
    static Duration grace(Duration drainTimeout) {
        return drainTimeout.plus(MARGIN);
    }

    /** How often the open connections are counted while waiting (a gauge read, no lock). */
    private static final long POLL_MILLIS = 20;

    /**
     * @param millis how long the wait took
     * @param outbound outbound connections reset at the deadline
     * @param inbound inbound connections reset at the deadline
     */
    record Result(long millis, int outbound, int inbound) {
        int reset() {
            return outbound + inbound;
        }
    }

    private DrainDeadline() {}

    /**
     * Waits until {@code outboundOpen} and {@code inboundOpen} both say 0 or {@code deadline}
     * ({@link System#nanoTime}) passes, then resets what is left with {@code resetOutbound} and
     * {@code resetInbound} (each returns how many it reset).
     */
    static Result await(long deadline, IntSupplier outboundOpen, IntSupplier inboundOpen, IntSupplier resetOutbound,
            IntSupplier resetInbound) {
        long start = System.nanoTime();
        while (outboundOpen.getAsInt() + inboundOpen.getAsInt() > 0 && deadline - System.nanoTime() > 0) {
            try {
                Thread.sleep(Math.min(POLL_MILLIS, Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System
                        .nanoTime()))));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break; // reset what is left now
            }
        }
        int outbound = resetOutbound.getAsInt();
        int inbound = resetInbound.getAsInt();
        return new Result(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start), outbound, inbound);
    }
}
