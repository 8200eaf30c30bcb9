package dev.wisp.node.telemetry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.node.proxy.Outcome;
import io.micrometer.core.instrument.Counter;
import java.net.InetSocketAddress;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * What carried a connection, in its metrics and its flow record: an outbound HBONE flow opened
 * before the framing is chosen is counted opened once, with the framing it was then given, so that
 * opened, bytes and closed all carry the same {@code request_protocol}; HTTP/2 stays Istio's
 * {@code tcp} in the metrics and is {@code h2} in the record.
 */
class FlowProtocolTest {
    static final ConnectionLabels OUTBOUND = new ConnectionLabels("source", Optional.empty(), Optional.empty(),
            Optional.empty(), Optional.empty(), "", true).withProtocol(ConnectionLabels.NOT_CARRIED);
    static final InetSocketAddress SRC = new InetSocketAddress("10.1.0.4", 40000);
    static final InetSocketAddress DST = new InetSocketAddress("10.1.0.9", 8080);

    final Telemetry telemetry = new Telemetry();

    double count(String name, String protocol) {
        return telemetry.registry().find(name).tag("request_protocol", protocol).counters().stream()
                .mapToDouble(Counter::count).sum();
    }

    @Test
    void aFlowCarriedOverHttp3IsH3InEveryCounterAndInItsRecord() {
        Telemetry.Flow flow = telemetry.open("outbound", OUTBOUND, SRC, DST, "10.0.0.2:15008");
        assertThat(count("istio_tcp_connections_opened", "tcp")).as("not counted before the framing").isZero();
        flow.protocol(ConnectionLabels.H3);
        flow.toServer(5);
        flow.toClient(7);
        flow.close(Outcome.allowed());
        assertThat(count("istio_tcp_connections_opened", "h3")).isEqualTo(1);
        assertThat(count("istio_tcp_received_bytes", "h3")).isEqualTo(5);
        assertThat(count("istio_tcp_sent_bytes", "h3")).isEqualTo(7);
        assertThat(count("istio_tcp_connections_closed", "h3")).isEqualTo(1);
        assertThat(count("istio_tcp_connections_opened", "tcp")).isZero();
        assertThat(telemetry.flows().since(0)).singleElement()
                .satisfies(r -> assertThat(r.protocol()).isEqualTo("h3"));
    }

    @Test
    void http2IsIstiosTcpInMetricsAndH2InTheRecord() {
        Telemetry.Flow flow = telemetry.open("outbound", OUTBOUND, SRC, DST, "10.0.0.2:15008");
        flow.protocol(ConnectionLabels.H2);
        flow.close(Outcome.allowed());
        assertThat(count("istio_tcp_connections_opened", "tcp")).isEqualTo(1);
        assertThat(count("istio_tcp_connections_closed", "tcp")).isEqualTo(1);
        assertThat(telemetry.flows().since(0)).singleElement()
                .satisfies(r -> assertThat(r.protocol()).isEqualTo("h2"));
    }

    @Test
    void aFlowRefusedBeforeItWasCarriedIsCountedOnceWithAnEmptyProtocol() {
        Telemetry.Flow flow = telemetry.open("outbound", OUTBOUND, SRC, DST, "10.0.0.2:15008");
        flow.close(new Outcome.Unreachable("no QUIC handshake"));
        flow.protocol(ConnectionLabels.H3); // too late: nothing changes
        assertThat(count("istio_tcp_connections_opened", "tcp")).isEqualTo(1);
        assertThat(count("istio_tcp_connections_closed", "tcp")).isEqualTo(1);
        assertThat(count("istio_tcp_connections_opened", "h3")).isZero();
        assertThat(telemetry.flows().since(0)).singleElement().satisfies(r -> {
            assertThat(r.protocol()).isEmpty();
            assertThat(r.verdict()).isEqualTo(FlowRecord.FAILED);
        });
    }

    @Test
    void aRecordRoundTripsItsProtocolAndAnOlderRecordReadsAsUnknown() throws Exception {
        Telemetry.Flow flow = telemetry.open("inbound", OUTBOUND.withProtocol(ConnectionLabels.H3), SRC, DST, null);
        flow.close(Outcome.allowed());
        FlowRecord back = FlowLog.parse(telemetry.flows().json(0).get(0));
        assertThat(back.protocol()).isEqualTo("h3");
        var older = (com.fasterxml.jackson.databind.node.ObjectNode) telemetry.flows().json(0).get(0);
        older.remove("protocol");
        assertThat(FlowLog.parse(older).protocol()).isEmpty();
    }

    @Test
    void anUnknownProtocolIsRefused() {
        assertThatThrownBy(() -> OUTBOUND.withProtocol("h2c")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("h2c");
    }
}
