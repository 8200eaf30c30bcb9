package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** {@link FairShare}'s rule on a fake clock: 20 ms windows, a quantum of 64 KiB, a connection 64 KiB. */
class FairShareTest {
    static final long MS = 1_000_000;
    static final long KIB = 1024;
    /** The start of a window. */
    static final long T0 = 1_000 * 20 * MS;
    final FairShare fair = new FairShare(FairShare.Settings.TUNED);

    @Test
    void aWorkloadAloneIsNeverHeld() {
        for (long t = T0; t < T0 + 200 * MS; t += MS) {
            assertThat(fair.bytes("bulk", 1024 * KIB, t)).as("1 MiB a millisecond, alone, at +%d ms", (t - T0) / MS)
                    .isZero();
            assertThat(fair.connection("bulk", t)).as("a connection a millisecond, alone").isZero();
        }
    }

    @Test
    void aHeavyWorkloadBesideALightOneIsHeldToTheEndOfTheWindowOnceOverItsQuantum() {
        assertThat(fair.bytes("quiet", 2 * KIB, T0)).as("the light one's request").isZero();
        assertThat(fair.bytes("push", 64 * KIB, T0 + MS)).as("up to the quantum: read on").isZero();
        assertThat(fair.bytes("push", 64 * KIB, T0 + 2 * MS)).as("over it, 66 KiB ahead of quiet: held for the "
                + "18 ms left of the window").isEqualTo(18 * MS);
        assertThat(fair.bytes("quiet", 2 * KIB, T0 + 5 * MS)).as("the light one is never held").isZero();
        assertThat(fair.connection("push", T0 + 6 * MS)).as("its new connections wait as well").isEqualTo(14 * MS);
        assertThat(fair.connection("quiet", T0 + 6 * MS)).as("not quiet's").isZero();
        assertThat(fair.bytes("push", 64 * KIB, T0 + 20 * MS)).as("a new window: a new quantum").isZero();
        assertThat(fair.bytes("push", 128 * KIB, T0 + 21 * MS)).as("quiet was active in the previous window (68 KiB "
                + "with its connection) and not yet in this one: push at 192 KiB is held").isEqualTo(19 * MS);
    }

    @Test
    void aLightPodCatchingUpIsNotHeldAgainstAHeavierOneNotYetChargedInThisWindow() {
        fair.bytes("push", 300 * KIB, T0);
        assertThat(fair.bytes("quiet", 100 * KIB, T0 + 20 * MS)).as("quiet's burst after a stall: 100 KiB, but push "
                + "used 300 KiB last window").isZero();
        assertThat(fair.bytes("push", 200 * KIB, T0 + 21 * MS)).as("push: 200 KiB, 100 ahead of quiet: held")
                .isEqualTo(19 * MS);
    }

    @Test
    void aNeighbourGoneForTwoWindowsHoldsNothing() {
        fair.bytes("quiet", 2 * KIB, T0);
        assertThat(fair.bytes("push", 256 * KIB, T0 + MS)).isPositive();
        assertThat(fair.bytes("push", 256 * KIB, T0 + 40 * MS)).as("two windows later quiet is no longer active")
                .isZero();
        assertThat(fair.active()).isEqualTo(1);
    }

    @Test
    void twoHeavyWorkloadsTakeTurnsAndOneOfThemAlwaysRuns() {
        long a = 0;
        long b = 0;
        int bothHeld = 0;
        // Each reads 64 KiB in turn, as two busy connections on one loop would; whichever is more
        // than a quantum ahead of the other waits, the other catches up.
        for (int i = 0; i < 100; i++) {
            long t = T0 + i * 10_000; // 100 reads within one window
            boolean aHeld = fair.bytes("a", 64 * KIB, t) > 0;
            boolean bHeld = fair.bytes("b", 64 * KIB, t) > 0;
            a += 64 * KIB;
            b += 64 * KIB;
            bothHeld += aHeld && bHeld ? 1 : 0;
        }
        assertThat(bothHeld).as("never both held: the agent is not left idle between two bulk pods").isZero();
        assertThat(a).isEqualTo(b);
    }

    @Test
    void theOneAheadByMoreThanAQuantumWaitsForTheOther() {
        fair.bytes("b", 64 * KIB, T0);
        assertThat(fair.bytes("a", 128 * KIB, T0)).as("a: 128 KiB, b: 64 KiB: not a quantum apart").isZero();
        assertThat(fair.bytes("a", 64 * KIB, T0 + MS)).as("a: 192 KiB, 128 ahead: held").isEqualTo(19 * MS);
        assertThat(fair.bytes("b", 64 * KIB, T0 + MS)).as("b catches up, not held").isZero();
    }

    @Test
    void aFloodOfConnectionsBesideALightWorkloadGetsTwoAWindowAndWaitsForTheRest() {
        fair.bytes("quiet", 2 * KIB, T0);
        int admitted = 0;
        for (int i = 0; i < 32; i++) {
            admitted += fair.connection("flood", T0 + MS) == 0 ? 1 : 0;
        }
        assertThat(admitted).as("64 KiB each: 0 and 64 KiB used before each, the third finds 128 > 64")
                .isEqualTo(2);
        assertThat(fair.connection("flood", T0 + 20 * MS)).as("next window").isZero();
    }

    @Test
    void offHoldsNothing() {
        FairShare off = new FairShare(FairShare.Settings.OFF);
        off.bytes("quiet", 1, T0);
        assertThat(off.bytes("push", 1 << 30, T0)).isZero();
        assertThat(off.connection("push", T0)).isZero();
        FairShare free = new FairShare(new FairShare.Settings(Duration.ofMillis(20), 64 * KIB, 0));
        free.bytes("quiet", 1, T0);
        free.bytes("push", 1 << 30, T0);
        assertThat(free.connection("push", T0)).as("connection cost 0: connections are never held").isZero();
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
