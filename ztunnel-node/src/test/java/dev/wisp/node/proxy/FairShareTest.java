package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

/**
 * {@link FairShare}'s work-conserving rule on a fake clock: 20 ms windows, a quantum of 64 KiB, a
 * connection 64 KiB; an answer later than 10 ms is late, and counts for 100 ms.
 */
class FairShareTest {
    static final long MS = 1_000_000;
    static final long KIB = 1024;
    /** The start of a window. */
    static final long T0 = 1_000 * 20 * MS;
    final FairShare fair = new FairShare(FairShare.Settings.TUNED);

    /** A connection of {@code workload} started at {@code t} whose server side has answered (idle now). */
    FairShare.Exchange idle(String workload, long t) {
        FairShare.Exchange e = fair.exchange(workload, t);
        assertThat(fair.connection(e, t)).isZero();
        e.read(false, 100, t);
        return e;
    }

    @Test
    void aWorkloadAloneIsNeverHeld() {
        FairShare.Exchange bulk = fair.exchange("bulk", T0);
        for (long t = T0; t < T0 + 200 * MS; t += MS) {
            assertThat(bulk.read(true, 1024 * KIB, t)).as("1 MiB a millisecond, alone, at +%d ms", (t - T0) / MS)
                    .isZero();
            assertThat(fair.connection(fair.exchange("bulk", t), t)).as("a connection a millisecond, alone").isZero();
        }
    }

    @Test
    void aHeavyWorkloadBesideAnIdleOneRunsAtFullSpeed() {
        idle("quiet", T0);
        FairShare.Exchange push = fair.exchange("push", T0);
        for (long t = T0 + MS; t < T0 + 100 * MS; t += MS) {
            assertThat(push.read(true, 1024 * KIB, t)).as("quiet's connection open, nothing asked, at +%d ms",
                    (t - T0) / MS).isZero();
        }
        assertThat(fair.harmed(T0 + 200 * MS)).as("nobody kept waiting").isZero();
    }

    @Test
    void aHeavyWorkloadIsHeldOnlyOnceALightOnesAnswersComeLate() {
        FairShare.Exchange quiet = idle("quiet", T0);
        FairShare.Exchange push = fair.exchange("push", T0);
        assertThat(quiet.read(true, 1 * KIB, T0 + MS)).as("quiet's request: never held").isZero();
        assertThat(push.read(true, 256 * KIB, T0 + 2 * MS)).as("quiet's request in flight for 1 ms: read on")
                .isZero();
        assertThat(quiet.read(false, 1 * KIB, T0 + 3 * MS)).as("quiet's prompt answer: never held").isZero();
        assertThat(push.read(true, 256 * KIB, T0 + 4 * MS)).as("answered promptly: read on").isZero();
        quiet.read(true, 1 * KIB, T0 + 5 * MS);
        assertThat(push.read(true, 64 * KIB, T0 + 16 * MS)).as("quiet's request in flight for 11 ms: push, over "
                + "its quantum and a quantum ahead, is held to the window's end").isEqualTo(4 * MS);
        assertThat(fair.connection(fair.exchange("push", T0 + 16 * MS), T0 + 16 * MS))
                .as("its new connections wait as well").isEqualTo(4 * MS);
        assertThat(quiet.read(false, 1 * KIB, T0 + 17 * MS)).as("quiet's late answer: never held").isZero();
        assertThat(push.read(true, 64 * KIB, T0 + 20 * MS)).as("a new window: a new quantum").isZero();
        assertThat(push.read(true, 64 * KIB, T0 + 21 * MS)).as("over it again, quiet's answer was late 4 ms ago")
                .isEqualTo(19 * MS);
        assertThat(push.read(true, 128 * KIB, T0 + 120 * MS)).as("103 ms after quiet's late answer: still "
                + "remembered (1 s), held").isEqualTo(20 * MS);
        assertThat(push.read(true, 128 * KIB, T0 + 1016 * MS)).as("999 ms after it: held").isEqualTo(4 * MS);
        assertThat(push.read(true, 128 * KIB, T0 + 1017 * MS)).as("1 s after quiet's late answer: read on")
                .isZero();
    }

    @Test
    void theSwitchTurnsTheShareOffAndOnAtRunTime() {
        FairShare.Exchange quiet = idle("quiet", T0);
        FairShare.Exchange push = fair.exchange("push", T0);
        quiet.read(true, 1 * KIB, T0 + MS);
        assertThat(push.read(true, 256 * KIB, T0 + 12 * MS)).as("on: quiet waiting 11 ms, push held").isPositive();
        fair.switchOn(false);
        assertThat(fair.on()).isFalse();
        assertThat(push.read(true, 256 * KIB, T0 + 13 * MS)).as("off: an open connection is not held").isZero();
        assertThat(fair.exchange("push", T0 + 13 * MS)).as("off: a new connection gets no exchange").isNull();
        assertThat(fair.connection(push, T0 + 13 * MS)).as("off: no connection waits").isZero();
        fair.switchOn(true);
        assertThat(push.read(true, 256 * KIB, T0 + 14 * MS)).as("on again: held").isPositive();
    }

    @Test
    void anAgentStartedWithoutTheShareIsSwitchedOnWithTheTunedSettings() {
        FairShare off = new FairShare(FairShare.Settings.OFF);
        assertThat(off.on()).isFalse();
        assertThat(off.exchange("quiet", T0)).as("off: no exchange").isNull();
        off.switchOn(true);
        assertThat(off.active()).isEqualTo(FairShare.Settings.TUNED);
        FairShare.Exchange quiet = off.exchange("quiet", T0);
        FairShare.Exchange push = off.exchange("push", T0);
        push.read(false, 1, T0); // the push's server side has answered: only quiet is outstanding
        assertThat(push.read(true, 64 * KIB + 1, T0 + 11 * MS)).as("switched on: tuned quantum, quiet waiting 11 "
                + "ms").isEqualTo(9 * MS);
        assertThat(quiet).isNotNull();
    }

    @Test
    void aRequestLongOverdueStopsCountingAfterFiveWindows() {
        FairShare.Exchange quiet = idle("quiet", T0);
        FairShare.Exchange push = fair.exchange("push", T0);
        quiet.read(true, 1 * KIB, T0);
        assertThat(push.read(true, 256 * KIB, T0 + 99 * MS)).as("quiet asked 99 ms ago").isPositive();
        assertThat(push.read(true, 256 * KIB, T0 + 100 * MS)).as("100 ms (5 windows) ago: no longer waiting")
                .isZero();
    }

    @Test
    void aClosedConnectionIsNoLongerWaitingAndItsWorkloadIsForgotten() {
        FairShare.Exchange quiet = fair.exchange("quiet", T0);
        FairShare.Exchange push = fair.exchange("push", T0);
        assertThat(push.read(true, 256 * KIB, T0 + 11 * MS)).as("quiet's connection in setup for 11 ms")
                .isEqualTo(9 * MS);
        quiet.end();
        quiet.end();
        assertThat(push.read(true, 256 * KIB, T0 + 11 * MS)).as("closed").isZero();
        assertThat(fair.tracked()).isEqualTo(1);
        push.end();
        assertThat(fair.tracked()).isZero();
        assertThat(quiet.read(true, 1, T0 + 2 * MS)).as("a read after the end").isZero();
        assertThat(fair.harmed(T0 + 50 * MS)).as("a read after the end is not outstanding").isZero();
    }

    @Test
    void twoHeavyWorkloadsTakeTurnsAndOneOfThemAlwaysRuns() {
        FairShare.Exchange ea = fair.exchange("a", T0);
        FairShare.Exchange eb = fair.exchange("b", T0);
        long a = 0;
        long b = 0;
        int bothHeld = 0;
        // Each uploads 64 KiB in turn, as two busy connections on one loop would; whichever is more
        // than a quantum ahead of the other waits, the other catches up.
        for (int i = 0; i < 100; i++) {
            long t = T0 + i * 10_000; // 100 reads within one window
            boolean aHeld = ea.read(true, 64 * KIB, t) > 0;
            boolean bHeld = eb.read(true, 64 * KIB, t) > 0;
            a += 64 * KIB;
            b += 64 * KIB;
            bothHeld += aHeld && bHeld ? 1 : 0;
        }
        assertThat(bothHeld).as("never both held: the agent is not left idle between two bulk pods").isZero();
        assertThat(a).isEqualTo(b);
        FairShare.Exchange x = fair.exchange("x", T0);
        FairShare.Exchange y = fair.exchange("y", T0);
        x.read(true, 64 * KIB, T0 + 11 * MS);
        assertThat(y.read(true, 192 * KIB, T0 + 11 * MS)).as("y, 128 KiB ahead of x, unanswered for 11 ms: held")
                .isEqualTo(9 * MS);
        assertThat(x.read(true, 64 * KIB, T0 + 11 * MS)).as("x catches up, not held").isZero();
    }

    @Test
    void aFloodOfConnectionsBesideALightWorkloadKeptWaitingGetsItsQuantumAndWaits() {
        FairShare.Exchange quiet = fair.exchange("quiet", T0);
        int admitted = 0;
        for (int i = 0; i < 32; i++) {
            admitted += fair.connection(fair.exchange("flood", T0 + MS), T0 + MS) == 0 ? 1 : 0;
        }
        assertThat(admitted).as("quiet's connection in setup for 1 ms: the flood goes on").isEqualTo(32);
        admitted = 0;
        for (int i = 0; i < 32; i++) {
            admitted += fair.connection(fair.exchange("flood", T0 + 31 * MS), T0 + 31 * MS) == 0 ? 1 : 0;
        }
        assertThat(admitted).as("quiet's in setup for 31 ms: 64 KiB each, 0 and 64 KiB used before each, the third "
                + "finds 128 > 64").isEqualTo(2);
        quiet.read(false, 10, T0 + 32 * MS);
        assertThat(fair.connection(fair.exchange("flood", T0 + 32 * MS), T0 + 32 * MS))
                .as("quiet's answer came late: the flood still waits").isEqualTo(8 * MS);
        admitted = 0;
        for (int i = 0; i < 3; i++) {
            admitted += fair.connection(fair.exchange("flood", T0 + 1040 * MS), T0 + 1040 * MS) == 0 ? 1 : 0;
        }
        assertThat(admitted).as("1008 ms after quiet's late answer: the flood goes on").isEqualTo(3);
    }

    @Test
    void offHoldsNothing() {
        FairShare off = new FairShare(FairShare.Settings.OFF);
        assertThat(off.exchange("push", T0)).as("no exchange is tracked").isNull();
        assertThat(off.connection(null, T0)).isZero();
        FairShare free = new FairShare(new FairShare.Settings(Duration.ofMillis(20), 64 * KIB, 0));
        free.exchange("quiet", T0);
        FairShare.Exchange push = free.exchange("push", T0);
        push.read(true, 1 << 30, T0);
        assertThat(free.connection(push, T0)).as("connection cost 0: connections are never held").isZero();
    }

    @Test
    void manyLoopsChargingAtOnceLeaveNothingBehind() throws Exception {
        // Lock-free accounts: 4 threads open, read on and close connections of 2 workloads at once.
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            String w = t % 2 == 0 ? "a" : "b";
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                for (int i = 0; i < 20_000; i++) {
                    long now = T0 + i * 1_000L;
                    FairShare.Exchange e = fair.exchange(w, now);
                    fair.connection(e, now);
                    e.read(true, 64 * KIB, now);
                    e.read(false, 64 * KIB, now);
                    e.end();
                }
            }));
        }
        go.countDown();
        for (Thread t : threads) {
            t.join();
        }
        assertThat(fair.tracked()).as("every workload forgotten").isZero();
        assertThat(fair.harmed(T0)).isZero();
    }

    @Test
    void nonsenseSettingsAreRefused() {
        assertThatThrownBy(() -> new FairShare.Settings(Duration.ofMillis(-1), 1, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("window");
        assertThatThrownBy(() -> new FairShare.Settings(Duration.ofMillis(20), 0, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("positive quantum");
        assertThatThrownBy(() -> new FairShare.Settings(Duration.ofMillis(20), 1, -1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("connection cost");
    }
}
