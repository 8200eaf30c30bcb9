package dev.wisp.node.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.testing.LogCapture;
import dev.wisp.node.proxy.Outcome;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Refused connections in the access log and the flow log, on a clock the test moves: one line and
 * one record each, the lines paced so that a flood of refusals writes a bounded number of lines and
 * says how many it left out.
 */
class RefusalLinesTest {
    static final ConnectionLabels LABELS = new ConnectionLabels("destination", Optional.empty(), Optional.empty(),
            Optional.empty(), Optional.empty(), "", false);
    static final InetSocketAddress PEER = new InetSocketAddress("10.9.0.7", 40123);
    static final InetSocketAddress DIALLED = new InetSocketAddress("10.0.0.2", 15008);

    final AtomicLong nanos = new AtomicLong(1_000_000_000L);
    final Telemetry telemetry = new Telemetry(nanos::get);
    LogCapture access;

    @BeforeEach
    void capture() {
        access = new LogCapture("wisp.access");
    }

    @AfterEach
    void release() {
        access.close();
    }

    void refuse(int n) {
        for (int i = 0; i < n; i++) {
            telemetry.refused("inbound", LABELS, PEER, DIALLED, new Outcome.BadRequest("authority 'x' is not ip:port"));
        }
    }

    @Test
    void oneRefusalIsOneLineAndOneRecordNamingThePeer() {
        refuse(1);
        assertThat(access.lines()).singleElement().asString()
                .startsWith("connection complete direction=inbound src.addr=10.9.0.7:40123 ")
                .contains("dst.addr=10.0.0.2:15008").endsWith("error=\"HBONE 400: authority 'x' is not ip:port\"");
        List<FlowRecord> records = telemetry.flows().since(0);
        assertThat(records).singleElement().satisfies(r -> {
            assertThat(r.sourceAddress()).isEqualTo("10.9.0.7:40123");
            assertThat(r.verdict()).isEqualTo(FlowRecord.FAILED);
            assertThat(r.reason()).isEqualTo("authority 'x' is not ip:port");
        });
    }

    @Test
    void aFloodWritesTheBurstThenASummaryWithTheNextLineItAllows() {
        refuse(500);
        assertThat(access.lines()).hasSize(Telemetry.REFUSAL_LINES_BURST);
        assertThat(telemetry.flows().since(0)).hasSize(500);

        nanos.addAndGet(1_000_000_000L); // one second: ten more lines' worth
        refuse(500);
        List<String> lines = access.lines();
        assertThat(lines).hasSize(Telemetry.REFUSAL_LINES_BURST + 1 + Telemetry.REFUSAL_LINES_PER_SECOND);
        assertThat(lines.get(Telemetry.REFUSAL_LINES_BURST))
                .isEqualTo("480 more refused connections not logged (over 10 lines/s; each is in the flow log)");
        assertThat(lines.getLast()).startsWith("connection complete");
        assertThat(telemetry.flows().since(0)).hasSize(Telemetry.FLOW_LOG_CAPACITY);

        nanos.addAndGet(60_000_000_000L); // a quiet minute refills the burst, not more
        refuse(100);
        assertThat(access.lines()).hasSize(lines.size() + 1 + Telemetry.REFUSAL_LINES_BURST);
        assertThat(access.lines().get(lines.size())).startsWith("490 more refused connections not logged");
    }
}
