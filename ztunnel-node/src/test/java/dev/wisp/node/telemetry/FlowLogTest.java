package dev.wisp.node.telemetry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

class FlowLogTest {
    static FlowRecord record(String workload) {
        return new FlowRecord(0, "2026-11-22T08:00:00Z", "destination", "10.1.0.10:40000", workload, "default",
                "spiffe://cluster.local/ns/default/sa/client", "10.1.1.10:8080", "server", "default", "",
                "spiffe://cluster.local/ns/default/sa/server", true, FlowRecord.ALLOWED, null, 10, 20, 3);
    }

    @Test
    void keepsTheLastRecordsNumberedFromOne() {
        FlowLog log = new FlowLog(3);
        assertThat(log.last()).isZero();
        for (int i = 1; i <= 5; i++) {
            assertThat(log.add(record("c" + i)).seq()).isEqualTo(i);
        }
        assertThat(log.last()).isEqualTo(5);
        assertThat(log.since(0)).extracting(FlowRecord::sourceWorkload).containsExactly("c3", "c4", "c5");
        assertThat(log.since(0)).extracting(FlowRecord::seq).containsExactly(3L, 4L, 5L);
    }

    @Test
    void sinceReturnsOnlyNewerRecordsOldestFirst() {
        FlowLog log = new FlowLog(10);
        for (int i = 1; i <= 4; i++) {
            log.add(record("c" + i));
        }
        assertThat(log.since(2)).extracting(FlowRecord::seq).containsExactly(3L, 4L);
        assertThat(log.since(4)).isEmpty();
        assertThat(log.since(99)).isEmpty();
    }

    @Test
    void jsonUsesSnakeCaseAndParsesBack() throws Exception {
        FlowLog log = new FlowLog(10);
        log.add(record("cli\"ent\n"));
        JsonNode a = log.json(0);
        assertThat(a).hasSize(1);
        JsonNode r = a.get(0);
        assertThat(r.get("seq").asLong()).isEqualTo(1);
        assertThat(r.get("source_identity").asText()).isEqualTo("spiffe://cluster.local/ns/default/sa/client");
        assertThat(r.get("bytes_sent").asLong()).isEqualTo(10);
        assertThat(r.get("bytes_received").asLong()).isEqualTo(20);
        assertThat(r.get("duration_millis").asLong()).isEqualTo(3);
        assertThat(r.get("reason").asText()).isEmpty();
        // Names from the control plane are escaped, not pasted: the array stays valid JSON.
        String text = FlowLog.JSON.writeValueAsString(a);
        assertThat(FlowLog.parse(FlowLog.JSON.readTree(text).get(0))).isEqualTo(log.since(0).getFirst());
        assertThat(FlowLog.parse(r).sourceWorkload()).isEqualTo("cli\"ent\n");
    }

    @Test
    void refusesAnEmptyLog() {
        assertThatThrownBy(() -> new FlowLog(0)).isInstanceOf(IllegalArgumentException.class);
    }
}
