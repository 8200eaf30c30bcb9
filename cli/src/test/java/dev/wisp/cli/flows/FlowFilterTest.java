package dev.wisp.cli.flows;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.node.telemetry.FlowRecord;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/** {@link FlowFilter}: each option alone and together, on the demo's three kinds of call. */
class FlowFilterTest {
    static FlowRecord flow(String srcNs, String src, String srcAddress, String verdict, String service) {
        return new FlowRecord(1, "2026-12-05T18:00:00Z", "destination", srcAddress, src, srcNs,
                src.isEmpty() ? "" : "spiffe://cluster.local/ns/" + srcNs + "/sa/" + src, "10.71.1.10:8080", "server",
                "default", service, "spiffe://cluster.local/ns/default/sa/server", true, verdict, "", 10, 20, 3);
    }

    static final FlowRecord CLIENT_OK = flow("default", "client", "10.71.0.10:40000", FlowRecord.ALLOWED, "");
    static final FlowRecord CURL_DENIED = flow("other", "curl", "10.71.0.11:40001", FlowRecord.DENIED, "");
    static final FlowRecord CURL_OK = flow("other", "curl", "10.71.0.11:40002", FlowRecord.ALLOWED,
            "server.default.svc.cluster.local");
    static final FlowRecord OUTSIDE_FAILED = flow("", "", "10.70.0.1:5000", FlowRecord.FAILED, "");
    static final List<FlowRecord> ALL = List.of(CLIENT_OK, CURL_DENIED, CURL_OK, OUTSIDE_FAILED);

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("nothing: everything", null, null, null, null, ALL),
                Arguments.of("denied from other/curl: the demo's denied calls", "other/curl", null, "denied", null,
                        List.of(CURL_DENIED)),
                Arguments.of("a workload in any namespace", "curl", null, null, null, List.of(CURL_DENIED, CURL_OK)),
                Arguments.of("the right name in the wrong namespace", "default/curl", null, null, null, List.of()),
                Arguments.of("a client outside the mesh by address", "10.70.0.1", null, null, null,
                        List.of(OUTSIDE_FAILED)),
                Arguments.of("to a workload", null, "default/server", "allowed", null, List.of(CLIENT_OK, CURL_OK)),
                Arguments.of("to a service the client asked for", null, "server", null, "other",
                        List.of(CURL_DENIED, CURL_OK)),
                Arguments.of("to a server by address", null, "10.71.1.10", "failed", null, List.of(OUTSIDE_FAILED)),
                Arguments.of("to nobody", null, "default/nobody", null, null, List.of()),
                Arguments.of("either end in a namespace", null, null, null, "default", ALL),
                Arguments.of("a source namespace", null, null, null, "other", List.of(CURL_DENIED, CURL_OK)),
                Arguments.of("failed only", null, null, "failed", null, List.of(OUTSIDE_FAILED)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void keepsExactlyTheMatchingConnections(String name, String from, String to, String verdict, String namespace,
            List<FlowRecord> expected) {
        FlowFilter f = FlowFilter.parse(from, to, verdict, namespace);
        assertThat(ALL.stream().filter(f).toList()).containsExactlyElementsOf(expected);
    }

    @Test
    void badOptionsNameTheOptionAndWhatItTakes() {
        assertThatThrownBy(() -> FlowFilter.parse(null, null, "refused", null))
                .hasMessage("--verdict: 'refused' is not one of allowed, denied, failed");
        assertThatThrownBy(() -> FlowFilter.parse("other/curl/x", null, null, null))
                .hasMessage("--from: 'other/curl/x' is not NAMESPACE/WORKLOAD, WORKLOAD or an IP address");
        assertThatThrownBy(() -> FlowFilter.parse(null, "/server", null, null))
                .hasMessageStartingWith("--to: '/server'");
        assertThatThrownBy(() -> FlowFilter.parse(null, null, null, "a/b")).hasMessage(
                "--namespace: 'a/b' is not a namespace");
    }
}
