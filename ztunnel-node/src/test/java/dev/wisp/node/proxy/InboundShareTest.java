package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.api.workload.v1.Workload;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.embedded.EmbeddedChannel;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link InboundShare}, the destination agent's side of the fair share, on a fake clock and an embedded
 * stream whose scheduler's time is frozen and moved by hand: a noisy source's new stream waits while a
 * quiet source is kept waiting, then starts with a budget that pauses its reads; a quiet source's
 * stream starts at once; no share or no known source means no wait and no budget.
 */
class InboundShareTest {
    static final long MS = 1_000_000;
    /** The start of a 20 ms window. */
    static final long T0 = 1_000 * 20 * MS;
    static final Workload QUIET = workload("quiet");
    static final Workload NOISY = workload("noisy");
    final FairShare fair = new FairShare(FairShare.Settings.TUNED);
    final MeterRegistry registry = new SimpleMeterRegistry();
    final AtomicLong now = new AtomicLong(T0);
    final EmbeddedChannel stream = new EmbeddedChannel();
    /** What {@code go} was given: unset until it is called, then the budget (a sentinel for null). */
    final AtomicReference<Object> started = new AtomicReference<>();
    static final Object NO_BUDGET = new Object();

    static Workload workload(String name) {
        return Workload.newBuilder().setUid(name + "-uid").setNamespace("default").setName(name).build();
    }

    @AfterEach
    void close() {
        stream.finishAndReleaseAll();
    }

    void admit(FairShare share, Optional<Workload> source) {
        InboundShare.admit(registry, share, source, stream, now::get, b -> started.set(b == null ? NO_BUDGET : b));
    }

    /**
     * Quiet's answer came 50 ms after its request (late: it was kept waiting); noisy used 1 MiB in this
     * window, answered at once (nothing of noisy's outstanding).
     */
    void quietKeptWaitingBesideANoisyWorkload() {
        FairShare.Exchange quiet = fair.exchange(QUIET.getUid(), T0 - 50 * MS);
        quiet.read(false, 100, T0);
        FairShare.Exchange noisy = fair.exchange(NOISY.getUid(), T0);
        noisy.read(true, 1024 * 1024, T0);
        noisy.read(false, 1, T0);
    }

    double counter(String name, String workload) {
        var c = registry.find(name).tag("workload", workload).counter();
        return c == null ? 0 : c.count();
    }

    @Test
    void withoutAShareOrAKnownSourceAStreamStartsAtOnceWithNoBudget() {
        admit(null, Optional.of(NOISY));
        assertThat(started.getAndSet(null)).as("no share").isSameAs(NO_BUDGET);
        quietKeptWaitingBesideANoisyWorkload();
        admit(fair, Optional.empty());
        assertThat(started.getAndSet(null)).as("a source the index does not know").isSameAs(NO_BUDGET);
        fair.switchOn(false);
        admit(fair, Optional.of(NOISY));
        assertThat(started.get()).as("the share switched off").isSameAs(NO_BUDGET);
    }

    /** Noisy's new stream at 1 ms into the window, beside quiet kept waiting: it waits (the stream's time frozen). */
    void noisysStreamWaits() {
        quietKeptWaitingBesideANoisyWorkload();
        stream.freezeTime();
        now.set(T0 + MS);
        admit(fair, Optional.of(NOISY));
        assertThat(started.get()).as("noisy is a quantum ahead of quiet, who was kept waiting: it waits").isNull();
    }

    /** The stream's time and the share's clock at the next window, its scheduled tasks run. */
    void nextWindow() {
        now.set(T0 + 20 * MS);
        stream.advanceTimeBy(19, TimeUnit.MILLISECONDS);
        stream.runScheduledPendingTasks();
    }

    @Test
    void aNoisySourcesStreamWaitsWhileAQuietOneIsKeptWaitingThenItsReadsArePaused() {
        noisysStreamWaits();
        assertThat(counter(Outbound.DELAYED, "default/noisy")).isEqualTo(1);
        assertThat(stream.runScheduledPendingTasks()).as("the stream asks again at the window's end, in %d ms",
                19).isEqualTo(TimeUnit.MILLISECONDS.toNanos(19));
        nextWindow();
        assertThat(started.get()).as("a new window: noisy has used nothing in it, so it connects")
                .isInstanceOf(Relay.Budget.class);
        Relay.Budget budget = (Relay.Budget) started.get();
        assertThat(budget.read(true, 256 * 1024)).as("a quantum ahead of quiet, still kept waiting lately: "
                + "paused to the window's end").isEqualTo(20 * MS);
        assertThat(counter(Outbound.PAUSED, "default/noisy")).isEqualTo(1);
        assertThat(counter(Outbound.DELAYED, "default/noisy")).as("one stream, counted once").isEqualTo(1);
    }

    @Test
    void aQuietSourcesStreamStartsAtOnce() {
        quietKeptWaitingBesideANoisyWorkload();
        now.set(T0 + MS);
        admit(fair, Optional.of(QUIET));
        assertThat(started.get()).as("quiet is behind, not ahead").isInstanceOf(Relay.Budget.class);
        assertThat(((Relay.Budget) started.get()).read(true, 1024)).isZero();
        assertThat(counter(Outbound.DELAYED, "default/quiet")).isZero();
    }

    @Test
    void aStreamClosedWhileItWaitsNeverStartsAndLeavesTheShare() {
        noisysStreamWaits();
        assertThat(fair.harmed(T0 + 15 * MS)).as("quiet (a late answer) and noisy (its stream waiting 14 ms)")
                .isEqualTo(2);
        stream.close();
        assertThat(fair.harmed(T0 + 15 * MS)).as("the closed stream's exchange ended: only quiet").isEqualTo(1);
        nextWindow();
        assertThat(started.get()).as("closed before its turn").isNull();
    }
}
