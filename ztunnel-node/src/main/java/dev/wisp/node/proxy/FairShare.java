package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Work-conserving fair sharing of the node agent between the workloads of its node (issue 18, noisy
 * neighbours), with no fixed rate: a workload is held only while another workload <em>is kept
 * waiting</em> and has had less of the agent. Pure (the caller gives the time) and lock-free on the
 * relay's path (atomics per workload; one instance serves all of the agent's event loops).
 *
 * <p><b>Accounting.</b> Time is cut into windows of {@code window} (20 ms by default). Within a
 * window each workload is charged what it used: the bytes its relays read (both directions, {@link
 * Exchange#read}) and {@code connectionCost} for each new connection it starts ({@link
 * #connection}).
 *
 * <p><b>Kept waiting.</b> Each of a workload's connections is an {@link Exchange}: it is
 * <em>outstanding</em> from its start (its setup, and any wait for its share) until the server side
 * first answers, and again each time the client side sends after the server's last answer, until the
 * server answers again. An answer later than half a window is <em>late</em>. A workload is kept
 * waiting when one of its answers was late within the last {@link #LATE_MEMORY} (1 s), or its latest
 * exchange has been outstanding for more than half a window (and less than {@code 5 x window}). The
 * memory of a late answer is long on purpose: with 100 ms, a heavy pod released after 100 ms of prompt
 * answers refilled the socket and HBONE buffers before the next late answer (issue 18, the push). A keep-alive
 * connection with nothing asked, or requests answered promptly, are not; the agent judges only by
 * what it relays.
 *
 * <p><b>The rule</b> (deficit round robin over windows): a workload that has used more than {@code
 * quantum} in this window is held until the window ends when some other workload is kept waiting and
 * has used at least {@code quantum} less than it in this window. So:
 * <ul>
 * <li>a workload alone, or beside idle ones, is never held: it runs at full speed;</li>
 * <li>beside a light one (a pod making requests at a modest rate) whose answers come promptly, a
 * heavy workload is not held either: the node has room for both;</li>
 * <li>once the light one's answers come late (the node is saturated, by the heavy one or by anything
 * else), the heavy one gets its quantum per window (about 16-20 MiB/s with four connections, two new
 * connections per window) until the light one's answers have been prompt for {@link #LATE_MEMORY};</li>
 * <li>two heavy workloads are held only while one of them is kept waiting and the other is more than a
 * quantum ahead: they alternate, and one of them always runs.</li>
 * </ul>
 * Failure modes, stated: a neighbour whose own server is slow (answers after more than half a window)
 * looks kept waiting, and holds a heavy pod to its quantum per window while it lasts; a heavy pod
 * is released as soon as its neighbours' answers are prompt again, so under steady saturation the
 * share alternates between holding and releasing, and a neighbour's first late answer of each cycle
 * is not prevented, only bounded.
 *
 * <p><b>Switch.</b> {@link #switchOn(boolean)} turns the share on or off at run time (the agent's admin
 * endpoint {@code POST /fair/switch?on=1|0}, loopback only), so that its cost to a pod alone can be measured
 * on and off in the same minute. An agent started without a window is switched on with {@link
 * Settings#TUNED}. Off, new connections get no exchange and existing exchanges are never held.
 */
public final class FairShare {
    /**
     * @param window the accounting window; zero turns fair sharing off
     * @param quantum what a workload may use per window before it can be held (bytes)
     * @param connectionCost what a new connection is charged, in bytes (0: connections are not held)
     */
    public record Settings(Duration window, long quantum, long connectionCost) {
        /** 20 ms windows, a quantum of 64 KiB, a connection charged as 64 KiB. */
        public static final Settings TUNED = new Settings(Duration.ofMillis(20), 64 * 1024, 64 * 1024);
        /**
         * Off, with {@link #TUNED}'s quantum and connection cost, so that a window alone turns on the
         * measured settings (ARCHITECTURE.md, "Noisy neighbours", says why it is off).
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

    /** How many windows an unanswered request counts as harm. */
    static final int HORIZON_WINDOWS = 5;
    /** How long a late answer counts as harm. */
    static final Duration LATE_MEMORY = Duration.ofSeconds(1);
    private static final long LATE_MEMORY_NANOS = LATE_MEMORY.toNanos();
    private final Settings settings;
    /** What the share runs with when on: {@link #settings}, or {@link Settings#TUNED} if that is off. */
    private final Settings active;
    private volatile boolean on;
    private final long window;
    /** An answer later than this (half a window) is late: its workload was kept waiting. */
    private final long patience;
    private final long horizon;
    /** The workloads with a connection open (or starting). */
    private final ConcurrentHashMap<String, Account> accounts = new ConcurrentHashMap<>();

    public FairShare(Settings settings) {
        this.settings = requireNonNull(settings, "settings");
        this.active = settings.on() ? settings : Settings.TUNED;
        this.on = settings.on();
        this.window = active.window().toNanos();
        this.patience = window / 2;
        this.horizon = HORIZON_WINDOWS * window;
    }

    /** The settings it was started with (see {@link #on()} for the switch). */
    public Settings settings() {
        return settings;
    }

    /** Whether the share is on now. */
    public boolean on() {
        return on;
    }

    /** Turns the share on (with {@link #active()}) or off, at run time. */
    public void switchOn(boolean on) {
        this.on = on;
    }

    /** What the share runs with when it is on. */
    public Settings active() {
        return active;
    }

    /** One workload's use of the agent. Every field is atomic: relays on any loop charge it. */
    private static final class Account {
        final String workload;
        /** Window index of {@link #used}. */
        final AtomicLong index = new AtomicLong(Long.MIN_VALUE);
        final AtomicLong used = new AtomicLong();
        /** Exchanges outstanding. */
        final AtomicInteger outstanding = new AtomicInteger();
        /** When its latest exchange became outstanding, a {@link System#nanoTime} reading. */
        volatile long lastAsk;
        /** When one of its exchanges was last answered late; {@link Long#MIN_VALUE}: never. */
        volatile long lastLate = Long.MIN_VALUE;
        /** Exchanges open; guarded by {@link #accounts}' compute on this workload. */
        int refs;

        Account(String workload) {
            this.workload = workload;
        }

        long charge(long n, long i) {
            long seen = index.get();
            if (seen != i && seen < i && index.compareAndSet(seen, i)) {
                used.set(0); // a charge racing with the roll may be lost: the accounts are approximate
            }
            return used.addAndGet(n);
        }

        long usedIn(long i) {
            return index.get() == i ? used.get() : 0;
        }

        /**
         * Kept waiting: an exchange answered later than {@code patience} within {@link #LATE_MEMORY}, or
         * the latest one outstanding for longer than {@code patience} (and less than {@code horizon}).
         */
        boolean harmed(long now, long patience, long horizon) {
            long late = lastLate;
            if (late != Long.MIN_VALUE && now - late < LATE_MEMORY_NANOS) {
                return true;
            }
            long waited = now - lastAsk;
            return outstanding.get() > 0 && waited > patience && waited < horizon;
        }
    }

    /**
     * A new connection of {@code workload} at {@code now}, outstanding until its server side answers;
     * {@link Exchange#end} when it closes. Null when fair sharing is off.
     */
    public Exchange exchange(String workload, long now) {
        if (!on) {
            return null;
        }
        Account a = accounts.compute(workload, (k, v) -> {
            Account x = v == null ? new Account(k) : v;
            x.refs++;
            return x;
        });
        return new Exchange(a, now);
    }

    /**
     * Whether connection {@code e} may start at {@code now}: 0 when it may (and it is charged), else
     * how long (ns) it should wait before asking again (it is not charged; it stays outstanding).
     */
    public long connection(Exchange e, long now) {
        if (e == null || !on || active.connectionCost() == 0) {
            return 0;
        }
        long i = Math.floorDiv(now, window);
        if (held(e.account, e.account.usedIn(i), now, i)) {
            return pause(now, i);
        }
        e.account.charge(active.connectionCost(), i);
        return 0;
    }

    /** One connection of a workload: what it reads is charged, and whether it is outstanding is tracked. */
    public final class Exchange {
        private final Account account;
        private final AtomicBoolean awaiting = new AtomicBoolean(true);
        private final AtomicBoolean ended = new AtomicBoolean();
        /** When it last became outstanding. */
        private volatile long askedAt;

        private Exchange(Account account, long now) {
            this.account = account;
            askedAt = now;
            account.lastAsk = now;
            account.outstanding.incrementAndGet();
        }

        /**
         * {@code n} bytes this connection just read at {@code now}, from its client side ({@code
         * request}) or its server side: how long (ns) that side should stop reading (0: read on).
         */
        public long read(boolean request, long n, long now) {
            if (request) {
                if (!awaiting.get() && !ended.get() && awaiting.compareAndSet(false, true)) {
                    askedAt = now;
                    account.lastAsk = now;
                    account.outstanding.incrementAndGet();
                }
            } else if (awaiting.get() && awaiting.compareAndSet(true, false)) {
                account.outstanding.decrementAndGet();
                if (now - askedAt > patience) {
                    account.lastLate = now;
                }
            }
            long i = Math.floorDiv(now, window);
            long used = account.charge(n, i);
            return held(account, used, now, i) ? pause(now, i) : 0;
        }

        /** The connection closed (once; later calls do nothing). */
        public void end() {
            if (!ended.compareAndSet(false, true)) {
                return;
            }
            if (awaiting.compareAndSet(true, false)) {
                account.outstanding.decrementAndGet();
            }
            accounts.computeIfPresent(account.workload, (k, v) -> --v.refs == 0 ? null : v);
        }
    }

    /**
     * Over its quantum, and some other workload kept waiting (lately) has used a quantum less in this
     * window.
     */
    private boolean held(Account a, long used, long now, long i) {
        if (!on || used <= active.quantum()) {
            return false;
        }
        long below = used - active.quantum();
        for (Account other : accounts.values()) {
            if (other != a && other.usedIn(i) < below && other.harmed(now, patience, horizon)) {
                return true;
            }
        }
        return false;
    }

    private long pause(long now, long i) {
        return Math.max(1, (i + 1) * window - now);
    }

    /** Workloads with a connection open. */
    int tracked() {
        return accounts.size();
    }

    /** Workloads kept waiting (lately) at {@code now}. */
    int harmed(long now) {
        return (int) accounts.values().stream().filter(a -> a.harmed(now, patience, horizon)).count();
    }
}
