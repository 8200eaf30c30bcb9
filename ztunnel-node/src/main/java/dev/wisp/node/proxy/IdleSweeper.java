package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Releases a pool's idle connections ({@link PoolCore#idle}): every half idle timeout (0.1 s to 30
 * s) on one of the agent's I/O loops, and every idle one at {@link #close}. The pool's monitor
 * guards its core, so the sweeper takes it to look and releases outside it.
 *
 * @param <C> the pool's connection handle
 */
final class IdleSweeper<C> implements AutoCloseable {
    private final Object pool;
    private final PoolCore<?, C, ?> core;
    private final long idleNanos;
    private final Consumer<C> release;
    private final ScheduledFuture<?> task;

    /**
     * @param pool the monitor that guards {@code core}
     * @param release closes one connection the core released
     */
    IdleSweeper(Object pool, PoolCore<?, C, ?> core, Duration idleTimeout, EventLoopGroup loops,
            Consumer<C> release) {
        this.pool = requireNonNull(pool, "pool");
        this.core = requireNonNull(core, "core");
        this.idleNanos = idleTimeout.toNanos();
        this.release = requireNonNull(release, "release");
        long period = Math.max(100, Math.min(30_000, idleTimeout.toMillis() / 2));
        this.task = loops.next().scheduleAtFixedRate(() -> release(idleNanos), period, period,
                TimeUnit.MILLISECONDS);
    }

    /** Releases the connections without streams for {@code nanos} or more (0: every one without streams). */
    private void release(long nanos) {
        List<C> idle;
        synchronized (pool) {
            idle = core.idle(System.nanoTime(), nanos);
        }
        idle.forEach(release);
    }

    /** Stops sweeping and releases every connection without streams now. */
    @Override
    public void close() {
        task.cancel(false);
        release(0);
    }
}
