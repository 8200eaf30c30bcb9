package dev.wisp.node.telemetry;

import java.util.function.LongSupplier;

/**
 * A token bucket for log lines that any peer can cause (refused connections): up to {@code burst}
 * lines at once, then {@code perSecond} lines a second; what is over budget is counted, and the
 * next line let through is preceded by a summary of how many were left out. A flood therefore
 * costs a bounded number of lines, and no refusal goes unmentioned: the count of the last
 * suppressed run appears with the next line that is written. (Flow records are not limited here:
 * they go to the bounded flow log anyway.)
 *
 * <p>Pure (the clock is given) and thread-safe: one short critical section per refusal, off the
 * per-byte path.
 */
final class LogBudget {
    private static final long NANOS_PER_SECOND = 1_000_000_000L;
    private final double burst;
    private final double perNano;
    private final LongSupplier nanoTime;
    // Guarded by `this`.
    private double tokens;
    private long refilledAt;
    private long suppressed;

    LogBudget(int burst, int perSecond, LongSupplier nanoTime) {
        if (burst < 1 || perSecond < 1) {
            throw new IllegalArgumentException("burst and rate must be positive: " + burst + ", " + perSecond);
        }
        this.burst = burst;
        this.perNano = (double) perSecond / NANOS_PER_SECOND;
        this.nanoTime = nanoTime;
        this.tokens = burst;
        this.refilledAt = nanoTime.getAsLong();
    }

    /**
     * Takes one line's worth of budget. Returns -1 when over budget (the line is counted and must
     * not be written), otherwise how many lines were suppressed since the last one written (to
     * summarise first when positive).
     */
    synchronized long acquire() {
        long now = nanoTime.getAsLong();
        tokens = Math.min(burst, tokens + (now - refilledAt) * perNano);
        refilledAt = now;
        if (tokens < 1) {
            suppressed++;
            return -1;
        }
        tokens--;
        long n = suppressed;
        suppressed = 0;
        return n;
    }
}
