package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * Per-source-workload admission of new outbound connections, so one pod cannot take the node
 * agent from the others (issue 18, noisy neighbours): every workload of the node has its own rate
 * of new connections and its own cap on open ones. Pure (the caller gives the time) and
 * thread-safe.
 *
 * <p><b>Rate</b>: a token bucket in its virtual-scheduling form (GCRA): {@code burst} connections
 * may start at once, then one every {@code 1 / connectionsPerSecond}. A connection over the rate is
 * not refused at once but <em>delayed</em> until its slot ({@link Admission#delayNanos}): a flood
 * is slowed to the rate by its own clients waiting, which costs the agent nothing while they wait.
 * One whose slot is more than {@code maxWait} away is refused ({@link Reason#RATE}) and takes no
 * slot, but only at the end of {@code maxWait}: a refusal closed at once would send its client
 * straight back, and a flood of refusals costs the agent an accept, a flow record and a log line
 * each (measured: 1,900 refused attempts a second from 32 threads), while a held connection costs
 * nothing until it is closed.
 *
 * <p><b>Open connections</b>: connections waiting (for a slot or for their refusal) or relayed count
 * until {@link #release}; one more than {@code maxConnections} is refused at once ({@link
 * Reason#CONNECTIONS}), so the held refusals are bounded too.
 *
 * <p><b>Bytes</b> (when {@code bytesPerSecond} is set): the bytes a workload's connections relay,
 * both ways, share a second bucket of the same form, {@code bytesPerSecond} after a burst of a tenth
 * of a second of it ({@link #BYTE_BURST_MIN} at least). {@link #bytes} charges what a connection just
 * read and answers how long that connection should stop reading: the relay pauses the reading side,
 * its peer's TCP window (or HTTP/2 stream window) then stops the sender. Measured as the cause of the
 * push's harm (ARCHITECTURE.md, "Noisy neighbours"): on a node whose cores are saturated, a pod
 * pushing bytes at full speed takes the agents' loops and cores from every other pod.
 *
 * <p><b>Fair share</b> (off by default, see {@link FairShare.Settings#DEFAULTS}; no fixed rate): when on,
 * {@link #fair()} holds a workload's reads, and delays its new connections, only while another
 * workload has work waiting and has had less of the agent ({@link FairShare}); a relay pauses for the
 * longer of the byte rate's pause and the share's hold.
 */
public final class WorkloadLimits {
    /**
     * @param connectionsPerSecond new connections per second per workload, after the burst
     * @param burst connections that may start at once
     * @param maxWait how long a connection over the rate may wait for its slot before it is refused
     *            (zero: refused at once)
     * @param maxConnections open connections per workload
     * @param bytesPerSecond bytes per second relayed per workload, both directions together (0: no limit)
     * @param fair how the workloads share the agent when more than one uses it ({@link FairShare})
     */
    public record Settings(double connectionsPerSecond, int burst, Duration maxWait, int maxConnections,
            long bytesPerSecond, FairShare.Settings fair) {
        /**
         * Generous for a normal pod (a busy HTTP client opens tens of connections a second; a pooled
         * one far fewer), low enough that one pod cannot open connections without end.
         */
        public static final Settings DEFAULTS = new Settings(500, 500, Duration.ofSeconds(1), 10_000, 0,
                FairShare.Settings.DEFAULTS);

        public Settings {
            if (!(connectionsPerSecond > 0) || burst < 1 || maxConnections < 1 || requireNonNull(maxWait, "maxWait")
                    .isNegative() || bytesPerSecond < 0) {
                throw new IllegalArgumentException("workload limits need a positive rate, burst and connection "
                        + "cap, a wait and a byte rate of zero or more: " + connectionsPerSecond + "/s, burst " + burst
                        + ", " + maxConnections + " open, wait " + maxWait + ", " + bytesPerSecond + " bytes/s");
            }
            requireNonNull(fair, "fair");
        }

        /** Without a byte rate, with the default fair share (off). */
        public Settings(double connectionsPerSecond, int burst, Duration maxWait, int maxConnections) {
            this(connectionsPerSecond, burst, maxWait, maxConnections, 0);
        }

        /** With the default fair share (off). */
        public Settings(double connectionsPerSecond, int burst, Duration maxWait, int maxConnections,
                long bytesPerSecond) {
            this(connectionsPerSecond, burst, maxWait, maxConnections, bytesPerSecond, FairShare.Settings.DEFAULTS);
        }

        /** The same settings with {@code bytesPerSecond} (0: no byte limit). */
        public Settings withBytesPerSecond(long bytes) {
            return new Settings(connectionsPerSecond, burst, maxWait, maxConnections, bytes, fair);
        }

        /** The same settings with fair sharing {@code f}. */
        public Settings withFair(FairShare.Settings f) {
            return new Settings(connectionsPerSecond, burst, maxWait, maxConnections, bytesPerSecond, f);
        }

        @Override
        public String toString() {
            return connectionsPerSecond + " new connections/s (burst " + burst + ", wait up to " + maxWait.toMillis()
                    + " ms), " + maxConnections + " open" + (bytesPerSecond == 0
                            ? ""
                            : ", " + bytesPerSecond
                                    + " bytes/s")
                    + ", " + fair;
        }
    }

    /** Why a connection was refused: the words of its flow record and the counter's label. */
    public enum Reason {
        RATE("connection rate"), CONNECTIONS("open connections");

        private final String label;

        Reason(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    /**
     * Admitted after {@code delayNanos} (0: at once), or refused for {@code refused} after {@code
     * delayNanos}. Every admission but a {@link Reason#CONNECTIONS} refusal counts as open until
     * {@link #release}.
     */
    public record Admission(long delayNanos, Reason refused) {
        public boolean admitted() {
            return refused == null;
        }

        /** Whether it counts as open until released. */
        public boolean counted() {
            return refused != Reason.CONNECTIONS;
        }
    }

    /** The smallest byte burst: a few TCP reads, so that a slow byte rate still moves whole reads. */
    public static final long BYTE_BURST_MIN = 256 * 1024;
    private final Settings settings;
    private final long interval;
    private final long tolerance;
    /** Nanoseconds per byte, and the byte burst as nanoseconds of it (0: no byte limit). */
    private final double nanosPerByte;
    private final long byteTolerance;
    private final Map<String, Bucket> buckets = new HashMap<>();
    private final FairShare fair;

    public WorkloadLimits(Settings settings) {
        this.settings = requireNonNull(settings, "settings");
        this.fair = new FairShare(settings.fair());
        this.interval = Math.max(1, Math.round(1e9 / settings.connectionsPerSecond()));
        this.tolerance = (settings.burst() - 1) * interval;
        long rate = settings.bytesPerSecond();
        this.nanosPerByte = rate == 0 ? 0 : 1e9 / rate;
        this.byteTolerance = rate == 0 ? 0 : Math.round(Math.max(BYTE_BURST_MIN, rate / 10.0) * nanosPerByte);
    }

    public Settings settings() {
        return settings;
    }

    /** How the workloads share the agent; its own lock, not this object's. */
    public FairShare fair() {
        return fair;
    }

    /** Whether a workload's reads are charged at all: a byte rate or fair sharing is set. */
    public boolean chargesBytes() {
        return settings.bytesPerSecond() > 0 || fair.on();
    }

    /**
     * One workload's state: the theoretical arrival time of its next connection and of its next byte,
     * and its open count.
     */
    private static final class Bucket {
        long tat;
        long byteTat;
        int open;

        Bucket(long now) {
            tat = now;
            byteTat = now;
        }
    }

    /** A new connection from {@code workload} at {@code now} (a {@link System#nanoTime} reading). */
    public synchronized Admission admit(String workload, long now) {
        Bucket b = buckets.computeIfAbsent(workload, w -> new Bucket(now));
        if (b.open >= settings.maxConnections()) {
            return new Admission(0, Reason.CONNECTIONS);
        }
        long tat = Math.max(b.tat, now);
        long delay = Math.max(0, tat - tolerance - now);
        b.open++;
        if (delay > settings.maxWait().toNanos()) {
            return new Admission(settings.maxWait().toNanos(), Reason.RATE);
        }
        b.tat = tat + interval;
        return new Admission(delay, null);
    }

    /** A counted connection of {@code workload} ended; a workload with nothing open and no debt is forgotten. */
    public synchronized void release(String workload, long now) {
        Bucket b = buckets.get(workload);
        if (b == null) {
            return;
        }
        b.open = Math.max(0, b.open - 1);
        if (b.open == 0 && b.tat <= now && b.byteTat <= now) {
            buckets.remove(workload);
        }
    }

    /**
     * {@code n} bytes that a connection of {@code workload} just relayed at {@code now}: how long (ns)
     * that connection should stop reading so that the workload stays within its byte rate (0: read on).
     * Always 0 without a byte rate (and then no lock is taken), or for a workload with no open
     * connection. The {@link FairShare fair share}'s hold is asked of {@link #fair()}'s exchanges.
     */
    public long bytes(String workload, long n, long now) {
        return nanosPerByte == 0 ? 0 : rated(workload, n, now);
    }

    private synchronized long rated(String workload, long n, long now) {
        Bucket b = buckets.get(workload);
        if (b == null) {
            return 0;
        }
        b.byteTat = Math.max(b.byteTat, now) + Math.round(n * nanosPerByte);
        return Math.max(0, b.byteTat - byteTolerance - now);
    }

    /** Workloads with state (open connections or a rate debt). */
    synchronized int tracked() {
        return buckets.size();
    }
}
