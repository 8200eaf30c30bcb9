package dev.wisp.wireguard.device;

import static java.util.Objects.requireNonNull;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Parallel work with ordered completion, the shape of wireguard-go's encryption and decryption
 * queues. A submitted {@link Job} goes into two queues: its {@link Lane} (one per peer and
 * direction, in submission order) and the shared work queue served by a pool of worker threads (one
 * per core), which run {@link Job#work} in any order and on any core. Each lane has one sequencer (a
 * virtual thread) that takes the lane's head job, waits until a worker has finished it, and hands it
 * to the lane's consumer: jobs of one lane reach the consumer exactly in submission order, whatever
 * order the workers finish them in.
 *
 * <p>Bounded, with backpressure and then drops: a submitter waits for room in a full work queue (for
 * a worker) and up to {@link #LANE_WAIT_MILLIS} for room in a full lane (for the sequencer); a lane
 * still full then drops the job ({@link Job#dropped}, counted), so a stalled sequencer costs other
 * peers little. A lane stays full that long when its sequencer, or the worker holding its head job,
 * gets no CPU for that long: on an oversubscribed machine that happens, and those batches are lost
 * (counted). Workers never wait on lanes, so this cannot deadlock; nor can lanes that never drop
 * ({@link #WAIT_FOR_ROOM}) as long as no consumer waits on a lane whose consumer waits on it.
 */
public final class OrderedPipeline implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(OrderedPipeline.class);
    /** How long a submitter waits for room in a full lane before dropping. */
    public static final long LANE_WAIT_MILLIS = 20;
    /** A lane wait for lanes that never drop: submitters wait for room as long as it takes. */
    public static final long WAIT_FOR_ROOM = -1;

    /** One unit of parallel work (in WireGuard: a batch of packets for one peer). */
    public abstract static class Job {
        /** Guarded by this. */
        private boolean done;

        /** The parallel part; runs on some worker. */
        protected abstract void work();

        /** Called instead of the consumer when the job is dropped (full lane, closed lane). */
        protected void dropped() {}

        final void runWork() {
            try {
                work();
            } catch (RuntimeException e) {
                LOG.warn("pipeline job failed: {}", e.toString());
            } finally {
                synchronized (this) {
                    done = true;
                    notifyAll();
                }
            }
        }

        final void awaitDone() throws InterruptedException {
            synchronized (this) {
                while (!done) {
                    wait();
                }
            }
        }

        /** Makes the job reusable after its consumer ran. */
        protected final synchronized void reset() {
            done = false;
        }
    }

    /** The ordered queue of one peer and direction, with its sequencer. */
    public final class Lane implements AutoCloseable {
        private final BlockingQueue<Job> queue;
        private final Consumer<Job> consumer;
        private final Thread sequencer;
        private volatile boolean open = true;
        /** Jobs submitted and not yet consumed (or dropped). */
        private final java.util.concurrent.atomic.AtomicInteger pending = new java.util.concurrent.atomic.AtomicInteger();
        /** Held while a job is handed to the consumer, by the sequencer or an inline caller. */
        private final java.util.concurrent.locks.ReentrantLock consuming = new java.util.concurrent.locks.ReentrantLock();

        private Lane(String name, int capacity, Consumer<Job> consumer) {
            this.queue = new ArrayBlockingQueue<>(capacity);
            this.consumer = consumer;
            this.sequencer = Thread.ofVirtual().name(name).unstarted(this::sequence);
            sequencer.start();
        }

        /**
         * Queues {@code job} behind the lane's earlier jobs and hands it to the workers; false (and
         * the job dropped) when the lane is closed or stays full for the pipeline's lane wait.
         * Callers that need a global order across threads (counters) serialise their calls.
         */
        public boolean submit(Job job) {
            boolean queued = false;
            if (open && running) {
                pending.incrementAndGet();
                try {
                    if (laneWaitMillis == WAIT_FOR_ROOM) {
                        queue.put(job);
                        queued = true;
                    } else {
                        queued = queue.offer(job, laneWaitMillis, java.util.concurrent.TimeUnit.MILLISECONDS);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                if (!queued) {
                    pending.decrementAndGet();
                }
            }
            if (!queued) {
                drops.increment();
                job.dropped();
                return false;
            }
            try {
                work.put(job);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                // Still in the lane: run it here so the sequencer does not wait for ever.
                job.runWork();
            }
            return true;
        }

        /**
         * Runs {@code job} on the calling thread, work and consumer, when none of this lane's jobs
         * is pending (so order is kept); false, doing nothing, otherwise. Saves the two thread
         * hand-offs when the lane is idle. Callers serialise their submissions to one lane.
         */
        public boolean runInlineIfIdle(Job job) {
            if (!open || pending.get() != 0 || !consuming.tryLock()) {
                return false;
            }
            try {
                if (pending.get() != 0) {
                    return false;
                }
                job.runWork();
                consumer.accept(job);
                return true;
            } finally {
                consuming.unlock();
            }
        }

        private void sequence() {
            try {
                while (open) {
                    Job j = queue.take();
                    j.awaitDone();
                    if (!open) {
                        pending.decrementAndGet();
                        j.dropped();
                        break;
                    }
                    consume(j);
                }
            } catch (InterruptedException e) {
                // closed
            }
        }

        /** Hands a finished job to the consumer under the consume lock; it is no longer pending. */
        private void consume(Job j) {
            consuming.lock();
            try {
                consumer.accept(j);
            } catch (RuntimeException e) {
                LOG.warn("pipeline consumer failed: {}", e.toString());
            } finally {
                consuming.unlock();
                pending.decrementAndGet();
            }
        }

        /** Stops the sequencer; jobs still queued are dropped once their work has finished. */
        @Override
        public void close() {
            open = false;
            sequencer.interrupt();
            awaitExit(sequencer);
            Job j;
            while ((j = queue.poll()) != null) {
                try {
                    j.awaitDone();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                j.dropped();
            }
        }

        /** Jobs waiting in this lane. */
        public int size() {
            return queue.size();
        }
    }

    private final BlockingQueue<Job> work;
    private final List<Thread> workers = new ArrayList<>();
    private final java.util.concurrent.atomic.LongAdder drops = new java.util.concurrent.atomic.LongAdder();
    private volatile boolean running = true;
    /** How long a submitter waits for room in a full lane, or {@link #WAIT_FOR_ROOM}. */
    private final long laneWaitMillis;

    /**
     * Starts {@code workers} platform threads serving a work queue of {@code capacity} jobs; a full
     * lane drops after {@link #LANE_WAIT_MILLIS}.
     */
    public OrderedPipeline(String name, int workers, int capacity) {
        this(name, workers, capacity, LANE_WAIT_MILLIS);
    }

    /** As above, with lanes that drop after {@code laneWaitMillis} or never ({@link #WAIT_FOR_ROOM}). */
    public OrderedPipeline(String name, int workers, int capacity, long laneWaitMillis) {
        requireNonNull(name, "name");
        if (workers < 1 || capacity < 1 || (laneWaitMillis < 0 && laneWaitMillis != WAIT_FOR_ROOM)) {
            throw new IllegalArgumentException("workers and capacity must be positive, the lane wait >= 0");
        }
        this.laneWaitMillis = laneWaitMillis;
        this.work = new ArrayBlockingQueue<>(capacity);
        for (int i = 0; i < workers; i++) {
            this.workers.add(Thread.ofPlatform().name(name + "-crypto-" + i).daemon().start(this::serve));
        }
    }

    private void serve() {
        try {
            while (running) {
                work.take().runWork();
            }
        } catch (InterruptedException e) {
            // closed
        }
    }

    /** A new ordered lane whose jobs go, in submission order, to {@code consumer}. */
    public Lane newLane(String name, int capacity, Consumer<Job> consumer) {
        return new Lane(requireNonNull(name, "name"), capacity, requireNonNull(consumer, "consumer"));
    }

    public int workers() {
        return workers.size();
    }

    /** Jobs dropped because a lane was full or closed. */
    public long drops() {
        return drops.sum();
    }

    /**
     * Stops the workers; jobs still in the work queue are finished on the calling thread so that
     * lanes closed afterwards can drop them. Close the lanes after this.
     */
    @Override
    public void close() {
        running = false;
        for (Thread t : workers) {
            t.interrupt();
        }
        for (Thread t : workers) {
            if (!awaitExit(t)) {
                break;
            }
        }
        Job j;
        while ((j = work.poll()) != null) {
            j.runWork();
        }
    }

    /** Waits up to 2 s for {@code t} to end; false, interrupt status kept, when interrupted meanwhile. */
    private static boolean awaitExit(Thread t) {
        try {
            t.join(2000);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
