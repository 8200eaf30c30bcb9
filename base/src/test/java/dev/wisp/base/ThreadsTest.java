package dev.wisp.base;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;

class ThreadsTest {
    @Test
    void aThreadThatEndsIsAwaitedAndOneThatDoesNotIsNot() throws Exception {
        Thread quick = Thread.ofPlatform().start(() -> {});
        assertThat(Threads.awaitEnd(quick, Duration.ofSeconds(10))).isTrue();
        CountDownLatch release = new CountDownLatch(1);
        Thread stuck = waitingFor(release);
        assertThat(Threads.awaitEnd(stuck, Duration.ofMillis(50))).isFalse();
        release.countDown();
        assertThat(Threads.awaitEnd(stuck, Duration.ofSeconds(10))).isTrue();
    }

    @Test
    void anInterruptEndsTheWaitAndIsKept() {
        Thread stuck = waitingFor(new CountDownLatch(1));
        Thread.currentThread().interrupt();
        try {
            assertThat(Threads.awaitEnd(stuck, Duration.ofMinutes(1))).isFalse();
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        } finally {
            Thread.interrupted();
            stuck.interrupt();
        }
    }

    @Test
    void aTerminationIsAwaitedForAsLongAsGivenAndAnInterruptIsKept() {
        long[] asked = new long[1];
        assertThat(Threads.awaitTermination((t, unit) -> {
            asked[0] = unit.toMillis(t);
            return true;
        }, Duration.ofSeconds(5))).isTrue();
        assertThat(asked[0]).isEqualTo(5000);
        try {
            assertThat(Threads.awaitTermination((t, unit) -> {
                throw new InterruptedException();
            }, Duration.ofSeconds(5))).isFalse();
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        } finally {
            Thread.interrupted();
        }
    }

    /** A daemon thread that ends when {@code latch} opens or it is interrupted. */
    private static Thread waitingFor(CountDownLatch latch) {
        return Thread.ofPlatform().daemon().start(() -> {
            try {
                latch.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }
}
