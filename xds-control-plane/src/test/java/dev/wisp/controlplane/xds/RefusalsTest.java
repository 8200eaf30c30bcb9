package dev.wisp.controlplane.xds;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.testing.LogCapture;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Every refusal is counted; the log gets one line per reason and node a minute, then the tally. */
class RefusalsTest {
    @Test
    void countsEachRefusalAndLogsOncePerMinutePerReasonAndNode() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        AtomicLong now = new AtomicLong(5);
        Refusals r = new Refusals(registry, now::get);
        try (LogCapture logs = new LogCapture(Refusals.class)) {
            assertThat(r.refuse(Refusals.Reason.CSR_RATE_LIMITED, "node-a", "too many")).isTrue();
            for (int i = 0; i < 99; i++) {
                assertThat(r.refuse(Refusals.Reason.CSR_RATE_LIMITED, "node-a", "too many")).isFalse();
            }
            assertThat(r.refuse(Refusals.Reason.CSR_RATE_LIMITED, "node-b", "too many")).as("another node").isTrue();
            assertThat(r.refuse(Refusals.Reason.XDS_OTHER_NODE, "node-a", "other")).as("another reason").isTrue();
            assertThat(logs.lines()).hasSize(3).first().isEqualTo("refused csr_rate_limited of node node-a: too many");

            now.addAndGet(Refusals.LOG_INTERVAL_NANOS);
            assertThat(r.refuse(Refusals.Reason.CSR_RATE_LIMITED, "node-a", "too many")).isTrue();
            assertThat(logs.lines()).hasSize(4).last().isEqualTo("refused csr_rate_limited of node node-a: too many "
                    + "(99 more refused for this reason and node in the last minute, not logged)");
        }
        assertThat(registry.get("wisp_controlplane_refused").tag("reason", "csr_rate_limited").counter().count())
                .isEqualTo(102);
        assertThat(registry.get("wisp_controlplane_refused").tag("reason", "message_refused").counter().count())
                .as("registered at zero").isZero();
    }
}
