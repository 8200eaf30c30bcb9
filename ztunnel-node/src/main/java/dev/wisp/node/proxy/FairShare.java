package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * Fair sharing of the node agent between the workloads of its node (issue 18, noisy neighbours),
 * with no fixed rate: a workload is held only while another workload is using the agent too and
 * has had less of it. Pure (the caller gives the time) and thread-safe (every method holds this
 * object's lock; one instance serves all of the agent's event loops).
 *
 * <p><b>Accounting.</b> Time is cut into windows of {@code window} (20 ms by default). Within a
 * window each workload is charged what it used: the bytes its relays read (both directions, {@link
 * #bytes}) and {@code connectionCost} for each new connection it starts ({@link #connection}). A
 * workload counts as <em>active</em> when it was charged in this window or the previous one; one not
 * charged yet in this window counts with what it used in the previous one.
 *
 * <p><b>The rule</b> (deficit round robin over windows, max-min in spirit): a workload that has
 * used more than {@code quantum} in this window is held until the window ends when some other
 * active workload has used at least {@code quantum} less than it in this window. So:
 * <ul>
 * <li>a workload alone (no other active one) is never held: a pod doing a bulk transfer by itself
 * gets everything the agent can give;</li>
 * <li>two heavy workloads are held only while one is more than a quantum ahead of the other: they
 * alternate and share, and one of them is always running (nothing is left idle between them);</li>
 * <li>a heavy workload beside a light one (a pod making requests at a modest rate) gets one quantum
 * and the reads that cross it per window, the light one whatever it asks: the agent's loops, and
 * the node's cores that they share with the pods, are left free most of each window for the light
 * one's bytes.</li>
 * </ul>
 * The last case is where the scheduler gives up capacity on purpose: with a light neighbour
 * active, a heavy workload's throughput is bounded by {@code quantum / window} plus the reads that
 * cross it (about 16-20 MiB/s with the defaults and four connections; two new connections per window), whatever the node could do.
 * That is the price measured to keep the light pod's latency (ARCHITECTURE.md, "Noisy neighbours"):
 * on a node whose cores are saturated, letting the heavy workload take all that is left (strict
 * work conservation) leaves the light one's bytes waiting behind busy loops and busy cores.
 *
 * <p>Why windows of wall time rather than the loop's turns, and one instance for the agent rather
 * than one per loop: what the workloads contend for is the node's cores, which all the agent's loops
 * (and the pods) share; a quiet pod's connection on one loop suffers from a push on another.
 */
public final class FairShare {
    /**
     * @param window the accounting window; zero turns fair sharing off
     * @param quantum what a workload may use per window before it can be held (bytes)
     * @param connectionCost what a new connection is charged, in bytes (0: connections are not held)
     */
    public record Settings(Duration window, long quantum, long connectionCost) {
        /**
         * 20 ms windows, a quantum of 64 KiB, a connection charged as 64 KiB: a heavy workload
         * beside a light one is left about 16-20 MiB/s and two new connections per window (100/s),
         * the rates measured harmless to a neighbour on a saturated 2-core node (at 32 KiB a flood
         * got 184/s, and the quiet pod's p99 went 22 x in one run).
         */
        public static final Settings TUNED = new Settings(Duration.ofMillis(20), 64 * 1024, 64 * 1024);
        /**
         * Off, with {@link #TUNED}'s quantum and connection cost, so that a window alone turns on the
         * measured settings. Off by default because a heavy workload beside any active one is held to
         * about {@code quantum / window} (16-20 MiB/s): a bulk transfer on a node of many pods would
         * be capped, which the operator must choose (ARCHITECTURE.md, "Noisy neighbours").
         */
        public static final Settings DEFAULTS = new Settings(Duration.ZERO, TUNED.quantum, TUNED.connectionCost);
        /** No fair sharing. */
        public static final Settings OFF = new Settings(Duration.ZERO, 1, 0);

        public Settings {
            if (requireNonNull(window, "window").isNegative() || quantum < 1 || connectionCost < 0) {
                throw new IllegalArgumentException("fair sharing needs a window of zero (off) or more, a positive "
                        + "quantum and a connection cost of zero or more: " + window + ", " + quantum + " bytes, "
                        + connectionCost + " bytes per connection");
            }
        }

        public boolean on() {
            return !window.isZero();
        }

        @Override
        public String toString() {
            return on()
                    ? "fair share: " + quantum + " bytes per " + window.toMillis() + " ms window, a connection "
                            + connectionCost + " bytes"
                    : "no fair share";
        }
    }

    private final Settings settings;
    private final long window;
    /** Index of the current window ({@code now / window}). Guarded by this. */
    private long index = Long.MIN_VALUE;
    /** What each workload used in the current window. Guarded by this. */
    private Map<String, Long> current = new HashMap<>();
    /** What each workload used in the previous window. Guarded by this. */
    private Map<String, Long> previous = new HashMap<>();

    public FairShare(Settings settings) {
        this.settings = requireNonNull(settings, "settings");
        this.window = settings.window().toNanos();
    }

    public Settings settings() {
        return settings;
    }

    /**
     * {@code n} bytes that a connection of {@code workload} just read at {@code now} (a {@link
     * System#nanoTime} reading): how long (ns) that connection should stop reading (0: read on).
     */
    public synchronized long bytes(String workload, long n, long now) {
        if (!settings.on()) {
            return 0;
        }
        roll(now);
        long used = current.merge(workload, n, Long::sum);
        return held(workload, used) ? untilWindowEnd(now) : 0;
    }

    /**
     * A new connection of {@code workload} at {@code now}: 0 when it may start now (and it is
     * charged), else how long (ns) it should wait before asking again (it is not charged).
     */
    public synchronized long connection(String workload, long now) {
        if (!settings.on() || settings.connectionCost() == 0) {
            return 0;
        }
        roll(now);
        if (held(workload, current.getOrDefault(workload, 0L))) {
            return untilWindowEnd(now);
        }
        current.merge(workload, settings.connectionCost(), Long::sum);
        return 0;
    }

    /**
     * Over its quantum, and some other active workload used a quantum less: in this window, or, for
     * one not charged yet in this window, in the previous one (its likely use: a pod making a
     * request every few milliseconds is not charged at the window's start, and the heavy one must not
     * take the window before it comes; a pod catching up after a stall is not held against a
     * neighbour that used more than it last window).
     */
    private boolean held(String workload, long used) {
        if (used <= settings.quantum()) {
            return false;
        }
        long below = used - settings.quantum();
        for (var e : current.entrySet()) {
            if (!e.getKey().equals(workload) && e.getValue() < below) {
                return true;
            }
        }
        for (var e : previous.entrySet()) {
            if (!e.getKey().equals(workload) && !current.containsKey(e.getKey()) && e.getValue() < below) {
                return true;
            }
        }
        return false;
    }

    private void roll(long now) {
        long i = Math.floorDiv(now, window);
        if (i == index) {
            return;
        }
        if (i == index + 1) {
            previous = current;
            current = new HashMap<>();
        } else if (i > index || index == Long.MIN_VALUE) {
            previous = new HashMap<>();
            current = new HashMap<>();
        } else {
            return; // a reading from a window already past (another loop's clock read earlier): charge it to this one
        }
        index = i;
    }

    private long untilWindowEnd(long now) {
        return Math.max(1, (index + 1) * window - now);
    }

    /** Workloads active (charged in this window or the previous one). */
    synchronized int active() {
        Map<String, Long> all = new HashMap<>(previous);
        all.putAll(current);
        return all.size();
    }
}
