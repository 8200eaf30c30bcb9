package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.bpf.capture.FlowEvent;
import java.net.InetSocketAddress;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class FlowRingTest {
    static FlowEvent event(long cookie) {
        return new FlowEvent(FlowEvent.Type.OPENED, cookie, 7, true, new InetSocketAddress("10.1.0.10", 40000),
                new InetSocketAddress("10.0.0.11", 15001), new InetSocketAddress("10.1.1.10", 8080), 0, 0);
    }

    @Test
    void keepsTheLastEventsOldestFirst() {
        FlowRing ring = new FlowRing(3);
        for (long i = 1; i <= 5; i++) {
            ring.add(Instant.EPOCH, event(i));
        }
        assertThat(ring.snapshot()).extracting(e -> e.event().cookie()).containsExactly(3L, 4L, 5L);
    }

    @Test
    void rendersValidJsonWithAddresses() throws Exception {
        FlowRing ring = new FlowRing(10);
        assertThat(new ObjectMapper().readTree(ring.jsonArray())).isEmpty();
        ring.add(Instant.EPOCH, event(42));
        ring.add(Instant.EPOCH, new FlowEvent(FlowEvent.Type.CLOSED, 43, 0, false,
                new InetSocketAddress("fd00::1", 1), new InetSocketAddress("fd00::2", 2), null, 10, 20));
        JsonNode flows = new ObjectMapper().readTree(ring.jsonArray());
        assertThat(flows).hasSize(2);
        assertThat(flows.get(0).get("original_destination").asText()).isEqualTo("10.1.1.10:8080");
        assertThat(flows.get(0).get("redirected").asBoolean()).isTrue();
        assertThat(flows.get(0).get("cookie").asLong()).isEqualTo(42);
        assertThat(flows.get(1).get("source").asText()).isEqualTo("[fd00::1]:1");
        assertThat(flows.get(1).get("original_destination").isNull()).isTrue();
        assertThat(flows.get(1).get("bytes_received").asLong()).isEqualTo(20);
    }
}
