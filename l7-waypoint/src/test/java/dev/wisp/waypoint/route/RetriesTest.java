package dev.wisp.waypoint.route;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.UInt32Value;
import dev.wisp.waypoint.route.Retries.Outcome;
import io.envoyproxy.envoy.config.route.v3.RetryPolicy;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Which attempts the waypoint repeats, from the retry policy the control plane writes for GEP-1731. */
class RetriesTest {
    /** {@code retry: {codes: [503, 502], attempts: 3, backoff: 100ms}}, {@code timeouts: {request: 2s, backendRequest: 500ms}}. */
    static final RouteAction CODES = RouteAction.newBuilder()
            .setTimeout(com.google.protobuf.Duration.newBuilder().setSeconds(2))
            .setRetryPolicy(RetryPolicy.newBuilder().setRetryOn("retriable-status-codes,connect-failure")
                    .addRetriableStatusCodes(503).addRetriableStatusCodes(502).setNumRetries(UInt32Value.of(3))
                    .setRetryBackOff(RetryPolicy.RetryBackOff.newBuilder()
                            .setBaseInterval(com.google.protobuf.Duration.newBuilder().setNanos(100_000_000)))
                    .setPerTryTimeout(com.google.protobuf.Duration.newBuilder().setNanos(500_000_000)))
            .build();
    /** {@code retry: {}}: any 5xx or no answer, Envoy's one retry. */
    static final RouteAction ANY_5XX = RouteAction.newBuilder()
            .setRetryPolicy(RetryPolicy.newBuilder().setRetryOn("5xx")).build();

    static Stream<Arguments> table() {
        return Stream.of(
                Arguments.of("a listed code, idempotent", CODES, 1, "GET", Outcome.ANSWERED, 503, true),
                Arguments.of("the last retry used", CODES, 3, "GET", Outcome.ANSWERED, 503, true),
                Arguments.of("every retry used", CODES, 4, "GET", Outcome.ANSWERED, 503, false),
                Arguments.of("a code not listed", CODES, 1, "GET", Outcome.ANSWERED, 500, false),
                Arguments.of("success", CODES, 1, "GET", Outcome.ANSWERED, 200, false),
                Arguments.of("PUT and DELETE are idempotent", CODES, 1, "DELETE", Outcome.ANSWERED, 502, true),
                Arguments.of("a POST the backend answered may have acted", CODES, 1, "POST", Outcome.ANSWERED, 503,
                        false),
                Arguments.of("a POST that never left is safe", CODES, 1, "POST", Outcome.CONNECT_FAILURE, 503, true),
                Arguments.of("cut by the per-try timeout: 504 not listed", CODES, 1, "GET", Outcome.NO_ANSWER, 504,
                        false),
                Arguments.of("5xx: any 5xx", ANY_5XX, 1, "GET", Outcome.ANSWERED, 500, true),
                Arguments.of("5xx: no answer", ANY_5XX, 1, "HEAD", Outcome.NO_ANSWER, 503, true),
                Arguments.of("5xx: one retry by default", ANY_5XX, 2, "GET", Outcome.ANSWERED, 500, false),
                Arguments.of("5xx: a 4xx is an answer", ANY_5XX, 1, "GET", Outcome.ANSWERED, 429, false),
                Arguments.of("no policy: one attempt", RouteAction.getDefaultInstance(), 1, "GET", Outcome.ANSWERED,
                        503, false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("table")
    void retried(String what, RouteAction action, int attempt, String method, Outcome outcome, int status,
            boolean expected) {
        assertThat(Retries.of(action).retry(attempt, method, outcome, status)).isEqualTo(expected);
    }

    @Test
    void backoffIsTheMinimumThenDoublesUpToTenTimesIt() {
        Retries r = Retries.of(CODES);
        assertThat(r.backoff(1)).isEqualTo(Duration.ofMillis(100));
        assertThat(r.backoff(2)).isEqualTo(Duration.ofMillis(200));
        assertThat(r.backoff(4)).isEqualTo(Duration.ofMillis(800));
        assertThat(r.backoff(5)).isEqualTo(Duration.ofMillis(1000));
        assertThat(r.backoff(60)).isEqualTo(Duration.ofMillis(1000));
        assertThat(r.timeout()).isEqualTo(Duration.ofSeconds(2));
        assertThat(r.perTry()).isEqualTo(Duration.ofMillis(500));
        assertThat(Retries.of(ANY_5XX).backoff(1)).as("Envoy's default base").isEqualTo(Duration.ofMillis(25));
        assertThat(Retries.of(ANY_5XX).timeout()).as("none").isZero();
    }
}
