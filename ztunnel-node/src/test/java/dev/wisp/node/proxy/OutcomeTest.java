package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.telemetry.FlowRecord;
import io.netty.handler.codec.socksx.v5.Socks5CommandStatus;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Every outcome's renderings: HBONE status, SOCKS5 reply, response_flags, access-log error, flow verdict/reason. */
class OutcomeTest {
    /** The outcomes of the table, by the name its first column uses. */
    static final Map<String, Outcome> OUTCOMES = Map.ofEntries(
            Map.entry("allowed", Outcome.allowed()),
            Map.entry("ended", Outcome.ended("Connection reset by peer")),
            Map.entry("deny-policy",
                    new Outcome.Policy("default/deny-client", "denied by DENY policy default/deny-client")),
            Map.entry("no-allow", new Outcome.Policy("", "denied: no ALLOW policy matched")),
            Map.entry("strict", new Outcome.StrictMtls("plaintext refused: b requires mTLS")),
            Map.entry("bypassed", new Outcome.BypassedWaypoint("bypassed waypoint: workload default/b")),
            Map.entry("upstream-401", new Outcome.DeniedUpstream("CONNECT 10.1.1.10:8080 answered 401")),
            Map.entry("no-route", new Outcome.NoRoute("service a.b has no healthy endpoint")),
            Map.entry("no-workload", new Outcome.NoWorkload("no workload has address 10.9.9.9")),
            Map.entry("bad-request", new Outcome.BadRequest("authority a.b:80 is not ip:port")),
            Map.entry("loop", new Outcome.Loop("10.1.1.10:15008 is an agent port (loop)")),
            Map.entry("unreachable", new Outcome.Unreachable("connection to 10.1.1.10:8080 failed")),
            Map.entry("malformed", new Outcome.Malformed("answered without :status")),
            Map.entry("peer-identity", new Outcome.PeerIdentity("presented X, expected one of [Y]")),
            Map.entry("upstream-500", new Outcome.UpstreamStatus(500, "answered 500")),
            Map.entry("upstream-503", new Outcome.UpstreamStatus(503, "answered 503")),
            Map.entry("no-source", new Outcome.NoSourceIdentity("127.0.0.1:1 is not a workload of node n1")),
            Map.entry("client-closed", new Outcome.ClientClosed("client closed before the tunnel was up")),
            Map.entry("limited", new Outcome.Limited(WorkloadLimits.Reason.RATE, "refused: over its connection rate")),
            Map.entry("tls-h2", new Outcome.Tls(Outcome.TlsRefusal.NO_H2, "offered [http/1.1]")),
            Map.entry("tls-cert", new Outcome.Tls(Outcome.TlsRefusal.NO_CERTIFICATE, "")));

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', nullValues = "NULL", textBlock = """
            allowed       | 200 | SUCCESS             | -    | NULL                                                | allowed | ''
            ended         | 200 | SUCCESS             | -    | Connection reset by peer                            | allowed | Connection reset by peer
            deny-policy   | 401 | FORBIDDEN           | DENY | HBONE 401: denied by DENY policy default/deny-client | denied  | denied by DENY policy default/deny-client
            no-allow      | 401 | FORBIDDEN           | DENY | HBONE 401: denied: no ALLOW policy matched           | denied  | denied: no ALLOW policy matched
            strict        | 401 | FORBIDDEN           | DENY | HBONE 401: plaintext refused: b requires mTLS        | denied  | plaintext refused: b requires mTLS
            bypassed      | 401 | FORBIDDEN           | DENY | HBONE 401: bypassed waypoint: workload default/b     | denied  | bypassed waypoint: workload default/b
            upstream-401  | 401 | FORBIDDEN           | DENY | HBONE 401: CONNECT 10.1.1.10:8080 answered 401       | denied  | CONNECT 10.1.1.10:8080 answered 401
            no-route      | 503 | NETWORK_UNREACHABLE | NR   | HBONE 503: service a.b has no healthy endpoint       | failed  | service a.b has no healthy endpoint
            no-workload   | 503 | HOST_UNREACHABLE    | NR   | HBONE 503: no workload has address 10.9.9.9          | failed  | no workload has address 10.9.9.9
            bad-request   | 400 | FAILURE             | DPE  | HBONE 400: authority a.b:80 is not ip:port         | failed  | authority a.b:80 is not ip:port
            loop          | 400 | FAILURE             | NR   | HBONE 400: 10.1.1.10:15008 is an agent port (loop)   | failed  | 10.1.1.10:15008 is an agent port (loop)
            unreachable   | 503 | HOST_UNREACHABLE    | UF   | HBONE 503: connection to 10.1.1.10:8080 failed       | failed  | connection to 10.1.1.10:8080 failed
            malformed     | 502 | FAILURE             | UPE  | HBONE 502: answered without :status                  | failed  | answered without :status
            peer-identity | 502 | FAILURE             | UF   | HBONE 502: presented X, expected one of [Y]          | failed  | presented X, expected one of [Y]
            upstream-500  | 502 | FAILURE             | UF   | HBONE 502: answered 500                              | failed  | answered 500
            upstream-503  | 502 | HOST_UNREACHABLE    | UF   | HBONE 502: answered 503                              | failed  | answered 503
            no-source     | 503 | FORBIDDEN           | NR   | HBONE 503: 127.0.0.1:1 is not a workload of node n1  | failed  | 127.0.0.1:1 is not a workload of node n1
            client-closed | 503 | FAILURE             | DC   | HBONE 503: client closed before the tunnel was up    | failed  | client closed before the tunnel was up
            limited       | 503 | FAILURE             | RL   | HBONE 503: refused: over its connection rate         | failed  | refused: over its connection rate
            tls-h2        | 0   | FAILURE             | TLS  | TLS ALPN without h2: offered [http/1.1]              | failed  | ALPN without h2: offered [http/1.1]
            tls-cert      | 0   | FAILURE             | TLS  | TLS no client certificate                            | failed  | no client certificate
            """)
    void rendersEveryView(String name, int status, String socks, String flags, String error,
            String verdict, String reason) throws ReflectiveOperationException {
        Outcome o = OUTCOMES.get(name);
        assertThat(o.hboneStatus()).as("HBONE status").isEqualTo(status);
        assertThat(o.socks5Reply()).as("SOCKS5 reply")
                .isEqualTo(Socks5CommandStatus.class.getField(socks).get(null));
        assertThat(o.responseFlags()).as("response_flags").isEqualTo(flags);
        assertThat(o.error()).as("access log error=").isEqualTo(Optional.ofNullable(error));
        assertThat(o.verdict()).as("flow verdict").isEqualTo(verdict);
        assertThat(o.reason()).as("flow reason").isEqualTo(reason);
    }

    @Test
    void onlyAllowedTellsTheSocksClientSuccess() {
        assertThat(OUTCOMES).hasSize(21);
        OUTCOMES.forEach((name, o) -> assertThat(o.socks5Reply() == Socks5CommandStatus.SUCCESS).as(name)
                .isEqualTo(o instanceof Outcome.Allowed));
        assertThat(Outcome.ended(null)).isEqualTo(Outcome.allowed());
        assertThat(Outcome.allowed().verdict()).isEqualTo(FlowRecord.ALLOWED);
    }
}
