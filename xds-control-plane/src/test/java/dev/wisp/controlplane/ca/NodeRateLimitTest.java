package dev.wisp.controlplane.ca;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class NodeRateLimitTest {
    @Test
    void aBurstThenTheRatePerNode() {
        AtomicLong now = new AtomicLong(1_000);
        NodeRateLimit limit = new NodeRateLimit(3, 2, now::get);
        for (int i = 0; i < 3; i++) {
            assertThat(limit.tryAcquire("a")).as("burst " + i).isTrue();
        }
        assertThat(limit.tryAcquire("a")).as("burst spent").isFalse();
        assertThat(limit.tryAcquire("b")).as("each node has its own bucket").isTrue();
        now.addAndGet(499_000_000L);
        assertThat(limit.tryAcquire("a")).as("not yet half a second").isFalse();
        now.addAndGet(1_000_000L);
        assertThat(limit.tryAcquire("a")).as("2/s: one after 0.5 s").isTrue();
        now.addAndGet(60_000_000_000L);
        for (int i = 0; i < 3; i++) {
            assertThat(limit.tryAcquire("a")).as("refilled up to the burst only").isTrue();
        }
        assertThat(limit.tryAcquire("a")).isFalse();
    }
}
