package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class WorkloadLimitsTest {
    static final long MS = 1_000_000;
    static final long T0 = 5_000 * MS;

    /** 10/s (one per 100 ms), burst 3, wait up to 250 ms, 10 open. */
    final WorkloadLimits limits = new WorkloadLimits(new WorkloadLimits.Settings(10, 3, Duration.ofMillis(250), 10));

    @Test
    void theBurstStartsAtOnceThenEachConnectionWaitsForItsSlotAndOneBeyondTheWaitIsRefused() {
        for (int i = 0; i < 3; i++) {
            assertThat(limits.admit("noisy", T0)).as("burst " + i).isEqualTo(new WorkloadLimits.Admission(0, null));
        }
        assertThat(limits.admit("noisy", T0).delayNanos()).isEqualTo(100 * MS);
        assertThat(limits.admit("noisy", T0).delayNanos()).isEqualTo(200 * MS);
        // The next slot is 300 ms away, over the 250 ms wait: refused at the end of the wait, and it
        // takes no slot.
        assertThat(limits.admit("noisy", T0))
                .isEqualTo(new WorkloadLimits.Admission(250 * MS, WorkloadLimits.Reason.RATE));
        assertThat(limits.admit("noisy", T0 + 60 * MS).delayNanos()).as("the slot the refusal did not take")
                .isEqualTo(240 * MS);
    }

    @Test
    void anotherWorkloadIsNotSlowedByANoisyOne() {
        for (int i = 0; i < 5; i++) {
            limits.admit("noisy", T0);
        }
        assertThat(limits.admit("noisy", T0).admitted()).isFalse();
        assertThat(limits.admit("quiet", T0)).isEqualTo(new WorkloadLimits.Admission(0, null));
    }

    @Test
    void theRateRefillsWithTime() {
        for (int i = 0; i < 3; i++) {
            limits.admit("a", T0);
        }
        for (int i = 0; i < 3; i++) {
            limits.release("a", T0);
        }
        // 300 ms later the three slots are back: the burst again, at once.
        for (int i = 0; i < 3; i++) {
            assertThat(limits.admit("a", T0 + 300 * MS).delayNanos()).isZero();
        }
        assertThat(limits.admit("a", T0 + 300 * MS).delayNanos()).isEqualTo(100 * MS);
    }

    @Test
    void openConnectionsAreCappedUntilOneIsReleased() {
        WorkloadLimits l = new WorkloadLimits(new WorkloadLimits.Settings(1000, 1000, Duration.ZERO, 2));
        assertThat(l.admit("a", T0).admitted()).isTrue();
        assertThat(l.admit("a", T0).admitted()).isTrue();
        assertThat(l.admit("a", T0)).isEqualTo(new WorkloadLimits.Admission(0, WorkloadLimits.Reason.CONNECTIONS));
        assertThat(l.admit("a", T0).counted()).as("a refusal for the cap is not held").isFalse();
        l.release("a", T0);
        assertThat(l.admit("a", T0).admitted()).isTrue();
    }

    @Test
    void aWorkloadWithNothingOpenAndNoDebtIsForgotten() {
        limits.admit("a", T0);
        limits.admit("b", T0);
        limits.release("a", T0 + 200 * MS);
        assertThat(limits.tracked()).isEqualTo(1);
        limits.release("b", T0 + 200 * MS);
        assertThat(limits.tracked()).isZero();
        limits.release("c", T0);
        assertThat(limits.tracked()).isZero();
    }

    @Test
    void withZeroWaitAConnectionOverTheRateIsRefusedAtOnce() {
        WorkloadLimits l = new WorkloadLimits(new WorkloadLimits.Settings(1, 1, Duration.ZERO, 10));
        assertThat(l.admit("a", T0).admitted()).isTrue();
        assertThat(l.admit("a", T0 + 500 * MS)).isEqualTo(new WorkloadLimits.Admission(0, WorkloadLimits.Reason.RATE));
        assertThat(l.admit("a", T0 + 1000 * MS).delayNanos()).isZero();
    }

    @Test
    void connectionsHeldForTheirRefusalCountAsOpenSoTheCapBoundsThem() {
        WorkloadLimits l = new WorkloadLimits(new WorkloadLimits.Settings(1, 1, Duration.ofMillis(100), 3));
        assertThat(l.admit("a", T0).admitted()).isTrue();
        WorkloadLimits.Admission held = l.admit("a", T0);
        assertThat(held).isEqualTo(new WorkloadLimits.Admission(100 * MS, WorkloadLimits.Reason.RATE));
        assertThat(held.counted()).isTrue();
        l.admit("a", T0);
        assertThat(l.admit("a", T0).refused()).as("three open: two of them held refusals")
                .isEqualTo(WorkloadLimits.Reason.CONNECTIONS);
        l.release("a", T0 + 100 * MS);
        assertThat(l.admit("a", T0 + 100 * MS).refused()).isEqualTo(WorkloadLimits.Reason.RATE);
    }

    @Test
    void bytesOverTheBurstPauseTheReaderForTheirShareOfTheRate() {
        // 10 MiB/s: a burst of 1 MiB (a tenth of a second), then 100 ms per MiB.
        long mib = 1 << 20;
        WorkloadLimits l = new WorkloadLimits(new WorkloadLimits.Settings(10, 3, Duration.ZERO, 10).withBytesPerSecond(
                10 * mib).withFair(FairShare.Settings.OFF)); // the rate alone: FairShareTest has the fair share
        l.admit("noisy", T0);
        assertThat(l.bytes("noisy", mib, T0)).as("the burst").isZero();
        assertThat(l.bytes("noisy", mib, T0)).as("one MiB over it: its 100 ms").isEqualTo(100 * MS);
        assertThat(l.bytes("noisy", mib / 2, T0 + 50 * MS)).as("half a MiB, 50 ms later").isEqualTo(100 * MS);
        assertThat(l.bytes("quiet", 100 * mib, T0)).as("a workload with no open connection is not tracked").isZero();
        l.admit("quiet", T0);
        assertThat(l.bytes("quiet", mib, T0)).as("another workload has its own budget").isZero();
        l.release("noisy", T0 + 200 * MS);
        assertThat(l.tracked()).as("still in debt (to T0 + 250 ms): remembered").isEqualTo(2);
        l.release("quiet", T0 + 200 * MS);
        assertThat(l.tracked()).as("the quiet workload is paid up and closed").isEqualTo(1);
    }

    @Test
    void withoutAByteRateBytesNeverPause() {
        limits.admit("a", T0);
        assertThat(limits.bytes("a", Long.MAX_VALUE / 4, T0)).isZero();
    }

    @Test
    void nonsenseSettingsAreRefused() {
        assertThatThrownBy(() -> new WorkloadLimits.Settings(1, 1, Duration.ZERO, 1, -1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("byte rate");
        assertThatThrownBy(() -> new WorkloadLimits.Settings(0, 1, Duration.ZERO, 1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("positive rate");
        assertThatThrownBy(() -> new WorkloadLimits.Settings(1, 1, Duration.ofSeconds(-1), 1))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
