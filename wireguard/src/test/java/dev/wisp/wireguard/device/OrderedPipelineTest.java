package dev.wisp.wireguard.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class OrderedPipelineTest {
    /** A job that takes a random time on its worker and records when it finished. */
    static final class DelayedJob extends OrderedPipeline.Job {
        final int lane;
        final int seq;
        final long delayNanos;
        final List<DelayedJob> finished;

        DelayedJob(int lane, int seq, long delayNanos, List<DelayedJob> finished) {
            this.lane = lane;
            this.seq = seq;
            this.delayNanos = delayNanos;
            this.finished = finished;
        }

        @Override
        protected void work() {
            // Simulated crypto time (not synchronisation): makes workers finish out of order.
            LockSupport.parkNanos(delayNanos);
            finished.add(this);
        }
    }

    @Test
    void eachLaneGetsAllItsJobsInSubmissionOrderWhateverOrderWorkersFinishThem() throws Exception {
        int perLane = 4000;
        List<DelayedJob> finished = Collections.synchronizedList(new ArrayList<>());
        List<List<Integer>> delivered = List.of(Collections.synchronizedList(new ArrayList<>()),
                Collections.synchronizedList(new ArrayList<>()));
        try (OrderedPipeline p = new OrderedPipeline("test", 4, 64)) {
            List<OrderedPipeline.Lane> lanes = new ArrayList<>();
            for (int l = 0; l < 2; l++) {
                List<Integer> out = delivered.get(l);
                lanes.add(p.newLane("lane-" + l, 2 * perLane, j -> out.add(((DelayedJob) j).seq)));
            }
            java.util.concurrent.atomic.AtomicInteger refused = new java.util.concurrent.atomic.AtomicInteger();
            List<Thread> submitters = new ArrayList<>();
            for (int l = 0; l < 2; l++) {
                int lane = l;
                submitters.add(Thread.ofPlatform().start(() -> {
                    SplittableRandom r = new SplittableRandom(lane);
                    for (int i = 0; i < perLane; i++) {
                        if (!lanes.get(lane).submit(new DelayedJob(lane, i, r.nextLong(200_000), finished))) {
                            refused.incrementAndGet();
                        }
                    }
                }));
            }
            for (Thread t : submitters) {
                t.join(Duration.ofSeconds(60));
            }
            assertThat(refused).hasValue(0);
            await().atMost(Duration.ofSeconds(60))
                    .until(() -> delivered.get(0).size() == perLane && delivered.get(1).size() == perLane);
            List<Integer> expected = IntStream.range(0, perLane).boxed().toList();
            assertThat(delivered.get(0)).isEqualTo(expected);
            assertThat(delivered.get(1)).isEqualTo(expected);
            assertThat(p.drops()).isZero();
            for (OrderedPipeline.Lane l : lanes) {
                l.close();
            }
        }
        // The workers really did finish jobs of one lane out of order (else the test proves nothing).
        List<Integer> lane0Finish;
        synchronized (finished) {
            lane0Finish = finished.stream().filter(j -> j.lane == 0).map(j -> j.seq).toList();
        }
        assertThat(lane0Finish).hasSize(perLane).isNotEqualTo(IntStream.range(0, perLane).boxed().toList());
    }

    static final class GateJob extends OrderedPipeline.Job {
        final CountDownLatch gate;
        final String name;
        final List<String> dropped;

        GateJob(String name, CountDownLatch gate, List<String> dropped) {
            this.name = name;
            this.gate = gate;
            this.dropped = dropped;
        }

        @Override
        protected void work() {
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Override
        protected void dropped() {
            dropped.add(name);
        }
    }

    @Test
    void aFullLaneDropsNewJobsInsteadOfGrowing() throws Exception {
        CountDownLatch gate = new CountDownLatch(1);
        CountDownLatch open = new CountDownLatch(0);
        List<String> consumed = Collections.synchronizedList(new ArrayList<>());
        List<String> dropped = Collections.synchronizedList(new ArrayList<>());
        try (OrderedPipeline p = new OrderedPipeline("test", 1, 8)) {
            OrderedPipeline.Lane lane = p.newLane("lane", 2, j -> consumed.add(((GateJob) j).name));
            assertThat(lane.submit(new GateJob("head", gate, dropped))).isTrue();
            // The sequencer takes the head out of the lane and waits for it.
            await().atMost(Duration.ofSeconds(10)).until(() -> lane.size() == 0);
            assertThat(lane.submit(new GateJob("a", open, dropped))).isTrue();
            assertThat(lane.submit(new GateJob("b", open, dropped))).isTrue();
            assertThat(lane.submit(new GateJob("c", open, dropped))).isFalse();
            assertThat(dropped).containsExactly("c");
            assertThat(p.drops()).isEqualTo(1);
            gate.countDown();
            await().atMost(Duration.ofSeconds(10)).until(() -> consumed.size() == 3);
            assertThat(consumed).containsExactly("head", "a", "b");
            lane.close();
            assertThat(lane.submit(new GateJob("late", open, dropped))).isFalse();
            assertThat(dropped).containsExactly("c", "late");
        }
    }
}
