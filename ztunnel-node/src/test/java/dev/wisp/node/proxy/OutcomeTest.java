package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.telemetry.FlowRecord;
import io.netty.handler.codec.socksx.v5.Socks5CommandStatus;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every outcome's renderings: HBONE status, SOCKS5 reply, response_flags, access-log error, flow verdict/reason. */
class OutcomeTest {

    static Stream<Arguments> renderings() {
        return Stream.of(
                row(Outcome.allowed(), 200, Socks5CommandStatus.SUCCESS, "-", null, FlowRecord.ALLOWED, ""),
                row(Outcome.ended("Connection reset by peer"), 200, Socks5CommandStatus.SUCCESS, "-",
                        "Connection reset by peer", FlowRecord.ALLOWED, "Connection reset by peer"),
                row(new Outcome.Policy("default/deny-client", "denied by DENY policy default/deny-client"), 401,
                        Socks5CommandStatus.FORBIDDEN, "DENY", "HBONE 401: denied by DENY policy default/deny-client",
                        FlowRecord.DENIED, "denied by DENY policy default/deny-client"),
                row(new Outcome.Policy("", "denied: no ALLOW policy matched"), 401, Socks5CommandStatus.FORBIDDEN,
                        "DENY", "HBONE 401: denied: no ALLOW policy matched", FlowRecord.DENIED,
                        "denied: no ALLOW policy matched"),
                row(new Outcome.StrictMtls("plaintext refused: workload b requires mTLS"), 401,
                        Socks5CommandStatus.FORBIDDEN, "DENY", "HBONE 401: plaintext refused: workload b requires mTLS",
                        FlowRecord.DENIED, "plaintext refused: workload b requires mTLS"),
                row(new Outcome.DeniedUpstream("HBONE CONNECT 10.1.1.10:8080 answered 401"), 401,
                        Socks5CommandStatus.FORBIDDEN, "DENY", "HBONE 401: HBONE CONNECT 10.1.1.10:8080 answered 401",
                        FlowRecord.DENIED, "HBONE CONNECT 10.1.1.10:8080 answered 401"),
                row(new Outcome.NoRoute("service a.b has no healthy endpoint"), 503,
                        Socks5CommandStatus.NETWORK_UNREACHABLE, "NR", "HBONE 503: service a.b has no healthy endpoint",
                        FlowRecord.FAILED, "service a.b has no healthy endpoint"),
                row(new Outcome.NoWorkload("no workload has address 10.9.9.9"), 503,
                        Socks5CommandStatus.HOST_UNREACHABLE, "NR", "HBONE 503: no workload has address 10.9.9.9",
                        FlowRecord.FAILED, "no workload has address 10.9.9.9"),
                row(new Outcome.BadRequest("authority 'a.b:80' is not ip:port"), 400, Socks5CommandStatus.FAILURE,
                        "DPE", "HBONE 400: authority 'a.b:80' is not ip:port", FlowRecord.FAILED,
                        "authority 'a.b:80' is not ip:port"),
                row(new Outcome.Loop("destination 10.1.1.10:15008 is an agent port (loop)"), 400,
                        Socks5CommandStatus.FAILURE, "NR",
                        "HBONE 400: destination 10.1.1.10:15008 is an agent port (loop)",
                        FlowRecord.FAILED, "destination 10.1.1.10:15008 is an agent port (loop)"),
                row(new Outcome.Unreachable("connection to 10.1.1.10:8080 failed"), 503,
                        Socks5CommandStatus.HOST_UNREACHABLE, "UF", "HBONE 503: connection to 10.1.1.10:8080 failed",
                        FlowRecord.FAILED, "connection to 10.1.1.10:8080 failed"),
                row(new Outcome.Malformed("answered without :status"), 502, Socks5CommandStatus.FAILURE, "UPE",
                        "HBONE 502: answered without :status", FlowRecord.FAILED, "answered without :status"),
                row(new Outcome.PeerIdentity("presented X, expected one of [Y]"), 502, Socks5CommandStatus.FAILURE,
                        "UF", "HBONE 502: presented X, expected one of [Y]", FlowRecord.FAILED,
                        "presented X, expected one of [Y]"),
                row(new Outcome.UpstreamStatus(500, "answered 500"), 502, Socks5CommandStatus.FAILURE, "UF",
                        "HBONE 502: answered 500", FlowRecord.FAILED, "answered 500"),
                row(new Outcome.UpstreamStatus(503, "answered 503"), 502, Socks5CommandStatus.HOST_UNREACHABLE, "UF",
                        "HBONE 502: answered 503", FlowRecord.FAILED, "answered 503"),
                row(new Outcome.NoSourceIdentity("source 127.0.0.1:1 is not a workload of node n1"), 503,
                        Socks5CommandStatus.FORBIDDEN, "NR",
                        "HBONE 503: source 127.0.0.1:1 is not a workload of node n1", FlowRecord.FAILED,
                        "source 127.0.0.1:1 is not a workload of node n1"),
                row(new Outcome.ClientClosed("client closed before the tunnel was up"), 503,
                        Socks5CommandStatus.FAILURE, "DC", "HBONE 503: client closed before the tunnel was up",
                        FlowRecord.FAILED, "client closed before the tunnel was up"),
                row(new Outcome.Tls(Outcome.TlsRefusal.NO_H2, "offered [http/1.1]"), 0, Socks5CommandStatus.FAILURE,
                        "TLS", "TLS ALPN without h2: offered [http/1.1]", FlowRecord.FAILED,
                        "ALPN without h2: offered [http/1.1]"),
                row(new Outcome.Tls(Outcome.TlsRefusal.NO_CERTIFICATE, ""), 0, Socks5CommandStatus.FAILURE, "TLS",
                        "TLS no client certificate", FlowRecord.FAILED, "no client certificate"));
    }

    private static Arguments row(Outcome o, int status, Socks5CommandStatus socks, String flags, String error,
            String verdict, String reason) {
        return Arguments.of(o, status, socks, flags, error, verdict, reason);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("renderings")
    void rendersEveryView(Outcome o, int status, Socks5CommandStatus socks, String flags, String error,
            String verdict, String reason) {
        assertThat(o.hboneStatus()).as("HBONE status").isEqualTo(status);
        assertThat(o.socks5Reply()).as("SOCKS5 reply").isEqualTo(socks);
        assertThat(o.responseFlags()).as("response_flags").isEqualTo(flags);
        assertThat(o.error()).as("access log error=").isEqualTo(Optional.ofNullable(error));
        assertThat(o.verdict()).as("flow verdict").isEqualTo(verdict);
        assertThat(o.reason()).as("flow reason").isEqualTo(reason);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("renderings")
    void onlyAllowedTellsTheSocksClientSuccess(Outcome o) {
        assertThat(o.socks5Reply() == Socks5CommandStatus.SUCCESS).isEqualTo(o instanceof Outcome.Allowed);
    }
}
