package dev.wisp.cli.flows;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.base.flows.OneLinePerCall;
import dev.wisp.node.telemetry.FlowRecord;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link OneLinePerCall} over {@code wisp flows}' rows ({@link FlowTable#oneLinePerCall}): the server's record of a call, the client's only when no server recorded it. */
class OneLinePerCallTest {
    static final long SECOND = 1_000_000_000L;

    static FlowTable.Row row(String node, String reporter, String src, String dst, String start, boolean mtls,
            String verdict) {
        return new FlowTable.Row(node, new FlowRecord(1, start, reporter, src, "curl", "other",
                "spiffe://cluster.local/ns/other/sa/curl", dst, "server", "default", "", "", mtls, verdict,
                reporter.equals("destination") ? "denied by DENY policy default/deny-other" : "", 0, 0, 2));
    }

    static FlowTable.Row out(String src, String start) {
        return row("node1", "source", src, "10.71.1.10:8080", start, true, FlowRecord.DENIED);
    }

    static FlowTable.Row in(String src, String start) {
        return row("node2", "destination", src, "10.71.1.10:8080", start, true, FlowRecord.DENIED);
    }

    final OneLinePerCall<FlowTable.Row> calls = FlowTable.oneLinePerCall(Duration.ofSeconds(3));

    @Test
    void aDeniedCallReadOnceIsTheServersRecordOnly() {
        FlowTable.Row o1 = out("10.71.0.11:40001", "2026-12-06T02:00:00.100Z");
        FlowTable.Row i1 = in("10.71.0.11:40001", "2026-12-06T02:00:00.120Z");
        FlowTable.Row o2 = out("10.71.0.11:40002", "2026-12-06T02:00:01.100Z");
        FlowTable.Row i2 = in("10.71.0.11:40002", "2026-12-06T02:00:01.110Z");
        assertThat(calls.offer(List.of(o1, i1, o2, i2), 0, true)).containsExactly(i1, i2);
    }

    @Test
    void aClientRecordNoServerRecordedIsShownAtTheEndOfASingleRead() {
        FlowTable.Row unreachable = row("node1", "source", "10.71.0.11:40003", "10.71.1.99:8080",
                "2026-12-06T02:00:00Z", true, FlowRecord.FAILED);
        FlowTable.Row outside = row("node1", "source", "10.71.0.11:40004", "192.0.2.1:443", "2026-12-06T02:00:01Z",
                false, FlowRecord.ALLOWED);
        assertThat(calls.offer(List.of(unreachable, outside), 0, true)).containsExactly(unreachable, outside);
    }

    @Test
    void followedTheServerRecordMayComeAPollLaterAndTheClientRecordIsNeverPrinted() {
        FlowTable.Row o = out("10.71.0.11:40001", "2026-12-06T02:00:00.100Z");
        FlowTable.Row i = in("10.71.0.11:40001", "2026-12-06T02:00:00.120Z");
        assertThat(calls.offer(List.of(o), 0, false)).isEmpty();
        assertThat(calls.offer(List.of(i), SECOND, false)).containsExactly(i);
        assertThat(calls.offer(List.of(), 10 * SECOND, false)).isEmpty();
    }

    @Test
    void followedTheClientRecordMayComeAPollLaterAndIsDropped() {
        FlowTable.Row i = in("10.71.0.11:40001", "2026-12-06T02:00:00.120Z");
        FlowTable.Row o = out("10.71.0.11:40001", "2026-12-06T02:00:00.100Z");
        assertThat(calls.offer(List.of(i), 0, false)).containsExactly(i);
        assertThat(calls.offer(List.of(o), 2 * SECOND, false)).isEmpty();
        assertThat(calls.offer(List.of(), 10 * SECOND, false)).isEmpty();
    }

    @Test
    void followedAClientRecordWithoutServerRecordIsPrintedWhenItsWaitEnds() {
        FlowTable.Row o = out("10.71.0.11:40001", "2026-12-06T02:00:00.100Z");
        assertThat(calls.offer(List.of(o), 0, false)).isEmpty();
        assertThat(calls.offer(List.of(), 2 * SECOND, false)).isEmpty();
        assertThat(calls.offer(List.of(), 3 * SECOND, false)).containsExactly(o);
        assertThat(calls.offer(List.of(), 4 * SECOND, false)).isEmpty();
    }

    @Test
    void aReusedClientPortMinutesLaterIsAnotherCall() {
        FlowTable.Row i = in("10.71.0.11:40001", "2026-12-06T02:00:00Z");
        FlowTable.Row laterOut = out("10.71.0.11:40001", "2026-12-06T02:05:00Z");
        assertThat(calls.offer(List.of(i, laterOut), 0, true)).containsExactly(i, laterOut);
    }

    @Test
    void aSocksClientOnTheNodeIsLoopbackOnItsAgentAndItsWorkloadAddressOnTheServers() {
        FlowTable.Row o = out("127.0.0.1:40001", "2026-12-06T02:00:00.100Z");
        FlowTable.Row i = in("10.71.0.11:40001", "2026-12-06T02:00:00.120Z");
        assertThat(calls.offer(List.of(o, i), 0, true)).containsExactly(i);
        FlowTable.Row otherPort = out("127.0.0.1:40009", "2026-12-06T02:00:00.100Z");
        assertThat(calls.offer(List.of(otherPort, i), 0, true)).containsExactly(otherPort, i);
    }

    @Test
    void twoServerRecordsAreNeverOneCall() {
        FlowTable.Row a = in("10.71.0.11:40001", "2026-12-06T02:00:00.100Z");
        FlowTable.Row b = row("node3", "destination", "10.71.0.11:40001", "10.71.1.10:8080",
                "2026-12-06T02:00:00.200Z", true, FlowRecord.ALLOWED);
        assertThat(calls.offer(List.of(a, b), 0, true)).containsExactly(a, b);
    }
}
