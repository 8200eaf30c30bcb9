package dev.wisp.spiffe.testing;

import dev.wisp.spiffe.manager.Scheduler;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * A {@link Scheduler} that runs nothing by itself: {@link #advance} moves its {@link MutableClock}
 * and runs, in due order on the calling thread, every task that has come due.
 */
public final class ManualScheduler implements Scheduler {
    private record Pending(Instant due, long seq, Runnable task, boolean[] cancelled) {}

    private final MutableClock clock;
    private final List<Pending> pending = new ArrayList<>();
    private long seq;

    public ManualScheduler(MutableClock clock) {
        this.clock = clock;
    }

    @Override
    public synchronized Task schedule(Duration delay, Runnable task) {
        boolean[] cancelled = {false};
        pending.add(new Pending(clock.instant().plus(delay), seq++, task, cancelled));
        return () -> {
            synchronized (ManualScheduler.this) {
                cancelled[0] = true;
            }
        };
    }

    /** Moves time forward by {@code d}, running each task when its due time is reached. */
    public void advance(Duration d) {
        Instant end = clock.instant().plus(d);
        while (true) {
            Pending next;
            synchronized (this) {
                pending.removeIf(p -> p.cancelled()[0]);
                next = pending.stream().filter(p -> !p.due().isAfter(end))
                        .min(Comparator.comparing(Pending::due).thenComparing(Pending::seq)).orElse(null);
                if (next == null) {
                    break;
                }
                pending.remove(next);
            }
            if (next.due().isAfter(clock.instant())) {
                clock.set(next.due());
            }
            next.task().run();
        }
        clock.set(end);
    }

    /** Delays until each live task is due, soonest first. */
    public synchronized List<Duration> pendingDelays() {
        return pending.stream().filter(p -> !p.cancelled()[0]).sorted(Comparator.comparing(Pending::due))
                .map(p -> Duration.between(clock.instant(), p.due())).toList();
    }
}
