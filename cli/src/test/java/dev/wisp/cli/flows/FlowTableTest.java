package dev.wisp.cli.flows;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.wisp.node.telemetry.FlowLog;
import dev.wisp.node.telemetry.FlowRecord;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class FlowTableTest {
    static final FlowTable TABLE = new FlowTable(ZoneOffset.UTC);

    static FlowRecord flow(String reporter, String srcWorkload, String srcId, String service, String verdict,
            long sent, long received, long ms) {
        return new FlowRecord(7, "2026-11-22T09:15:03.123Z", reporter, "10.161.0.10:40112", srcWorkload, "default",
                srcId, "10.161.1.10:8080", "server", "default", service,
                "spiffe://cluster.local/ns/default/sa/server", true, verdict, "", sent, received, ms);
    }

    @Test
    void headerAndRowsAreExactly120ColumnsWide() {
        assertThat(FlowTable.WIDTH).isEqualTo(120);
        assertThat(TABLE.header().codePointCount(0, TABLE.header().length())).isEqualTo(120);
        String row = TABLE.row(new FlowTable.Row("node1", flow("source", "a-very-long-client-workload-name",
                "spiffe://cluster.local/ns/some-long-namespace/sa/some-long-service-account", "server.default.svc",
                FlowRecord.ALLOWED, 123_456_789, 42, 61_000)));
        assertThat(row.codePointCount(0, row.length())).isEqualTo(120);
        assertThat(row).contains("…");
    }

    @Test
    void aRowShowsTimeSideIdentityDestinationVerdictBytesAndDuration() {
        String row = TABLE.row(new FlowTable.Row("node2", flow("destination", "client",
                "spiffe://cluster.local/ns/default/sa/client", "", FlowRecord.DENIED, 0, 0, 3)));
        assertThat(row).startsWith("09:15:03  node2 in   client (ns/default/sa/client)")
                .contains("  server:8080  ").contains("  denied   ").contains("  0/0  ").endsWith("3ms     ");
    }

    @Test
    void aServiceIsNamedAfterTheWorkloadAndAnOutsideClientByAddress() {
        assertThat(FlowTable.destination(flow("source", "c", "", "server.default.svc.cluster.local", "allowed", 0, 0,
                0))).isEqualTo("server/server:8080");
        FlowRecord outside = new FlowRecord(1, "2026-11-22T09:15:03Z", "destination", "10.161.0.99:5555", "", "", "",
                "10.161.1.10:8080", "", "", "", "", false, FlowRecord.DENIED, "plaintext refused", 0, 0, 0);
        assertThat(FlowTable.source(outside)).isEqualTo("10.161.0.99");
        assertThat(FlowTable.destination(outside)).isEqualTo("10.161.1.10:8080");
    }

    @Test
    void theCompactFormFitsEightyColumnsWithAnIndent() {
        String worst = TABLE.compact(new FlowTable.Row("node12", flow("destination",
                "a-very-long-client-workload-name", "spiffe://cluster.local/ns/some-long-namespace/sa/long",
                "server.default.svc", FlowRecord.ALLOWED, 999_999_999_999L, 999_999_999_999L, 7_620_000)));
        assertThat(worst.codePointCount(0, worst.length())).isLessThanOrEqualTo(77);
        assertThat(TABLE.compact(new FlowTable.Row("node2", flow("destination", "curl",
                "spiffe://cluster.local/ns/other/sa/curl", "", FlowRecord.DENIED, 0, 0, 2)))).isEqualTo(
                        "09:15:03 node2 in  curl (other/curl)        → server:8080   denied  0/0");
    }

    @Test
    void controlCharactersFromTheWireCannotMoveTheCursor() {
        assertThat(FlowTable.fit("a\u001b[2Jb", 6)).isEqualTo("a?[2Jb");
        assertThat(FlowTable.fit("abcdef", 4)).isEqualTo("abc…");
        assertThat(FlowTable.fit("ab", 4)).isEqualTo("ab  ");
    }

    @Test
    void jsonIsOneLineWithTheNodeAndFullIdentities() throws Exception {
        String line = FlowTable.json(new FlowTable.Row("node1", flow("source", "client",
                "spiffe://cluster.local/ns/default/sa/client", "", FlowRecord.ALLOWED, 5, 6, 7)));
        assertThat(line).doesNotContain("\n");
        JsonNode n = FlowLog.JSON.readTree(line);
        assertThat(n.get("node").asText()).isEqualTo("node1");
        assertThat(n.get("source_identity").asText()).isEqualTo("spiffe://cluster.local/ns/default/sa/client");
        assertThat(n.get("bytes_received").asLong()).isEqualTo(6);
        assertThat(FlowLog.parse(n).seq()).isEqualTo(7);
    }

    @ParameterizedTest
    @CsvSource({"0, 0", "999, 999", "1000, 1.0k", "1549, 1.5k", "12345, 12k", "999499, 999k", "999500, 1.0M",
            "123456789, 123M", "5000000000, 5.0G"})
    void bytesAreShort(long n, String shown) {
        assertThat(FlowTable.bytes(n)).isEqualTo(shown);
    }

    @ParameterizedTest
    @CsvSource({"0, 0ms", "999, 999ms", "1500, 1.5s", "42000, 42s", "185000, 3m05s", "7620000, 2h07m"})
    void durationsAreShort(long ms, String shown) {
        assertThat(FlowTable.duration(ms)).isEqualTo(shown);
    }

    @Test
    void shortIdDropsTheSchemeAndTrustDomainOnly() {
        assertThat(FlowTable.shortId("spiffe://cluster.local/ns/a/sa/b")).isEqualTo("ns/a/sa/b");
        assertThat(FlowTable.shortId("something-else")).isEqualTo("something-else");
    }
}
