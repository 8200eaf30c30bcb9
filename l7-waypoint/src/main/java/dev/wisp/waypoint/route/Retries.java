package dev.wisp.waypoint.route;

import io.envoyproxy.envoy.config.route.v3.RetryPolicy;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/**
 * A route's retry policy and timeouts as the waypoint applies them (pure), from the Envoy fields the
 * control plane writes for HTTPRoute's {@code retry} (GEP-1731) and {@code timeouts}.
 *
 * <ul>
 * <li>{@code num_retries} retries at most (Envoy's default 1 when a policy has none); none without a
 * policy.
 * <li>What is retried: {@code retriable-status-codes} (the listed statuses), {@code 5xx} (any 5xx,
 * and no answer), {@code gateway-error} (502, 503, 504, and no answer), {@code connect-failure} (the
 * tunnel to the endpoint could not be opened), {@code reset} (no answer). An attempt cut by the per-try
 * timeout counts as a 504 with no answer.
 * <li><b>Only what is safe to repeat</b>: an answered attempt is retried only for an idempotent method
 * (RFC 9110: GET, HEAD, OPTIONS, TRACE, PUT, DELETE); a POST or PATCH is retried only when the
 * endpoint was never reached (the tunnel could not be opened), since otherwise the backend may have
 * acted on it.
 * <li>Backoff: GEP-1731 makes {@code backoff} the minimum wait between attempts; the n-th retry waits
 * {@code base × 2^(n-1)}, capped at ten times the base (Envoy's default cap); 25 ms when not given.
 * <li>{@code timeout} bounds the whole request, retries included (0 = none); {@code per_try_timeout}
 * each attempt.
 * </ul>
 *
 * @param retries how many retries at most (0: one attempt)
 */
public record Retries(int retries, Set<String> on, Set<Integer> codes, Duration base, Duration perTry,
        Duration timeout) {
    static final Duration DEFAULT_BASE = Duration.ofMillis(25);
    private static final Set<String> IDEMPOTENT = Set.of("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE");

    /** How an attempt ended. */
    public enum Outcome {
        /** The backend answered (its status given). */
        ANSWERED,
        /** The tunnel to the endpoint could not be opened: the backend never saw the request. */
        CONNECT_FAILURE,
        /** The endpoint took the request and gave no answer (closed, reset, or the per-try timeout). */
        NO_ANSWER
    }

    public static Retries of(RouteAction a) {
        Duration timeout = a.hasTimeout() ? duration(a.getTimeout()) : Duration.ZERO;
        if (!a.hasRetryPolicy()) {
            return new Retries(0, Set.of(), Set.of(), DEFAULT_BASE, Duration.ZERO, timeout);
        }
        RetryPolicy p = a.getRetryPolicy();
        Duration base = p.hasRetryBackOff() && p.getRetryBackOff().hasBaseInterval()
                ? duration(p.getRetryBackOff().getBaseInterval())
                : DEFAULT_BASE;
        return new Retries(p.hasNumRetries() ? p.getNumRetries().getValue() : 1,
                Set.copyOf(List.of(p.getRetryOn().isEmpty() ? new String[0] : p.getRetryOn().split(","))),
                Set.copyOf(p.getRetriableStatusCodesList()), base,
                p.hasPerTryTimeout() ? duration(p.getPerTryTimeout()) : Duration.ZERO, timeout);
    }

    /**
     * Whether attempt {@code attempt} (1 = the first) that ended as {@code outcome} (with {@code status}
     * when answered) is followed by another.
     */
    public boolean retry(int attempt, String method, Outcome outcome, int status) {
        if (attempt > retries) {
            return false;
        }
        return switch (outcome) {
            case CONNECT_FAILURE -> on.contains("connect-failure") || on.contains("5xx") || on.contains("gateway-error")
                    || on.contains("reset");
            case NO_ANSWER -> IDEMPOTENT.contains(method) && (on.contains("5xx") || on.contains("gateway-error")
                    || on.contains("reset") || (on.contains("retriable-status-codes") && codes.contains(504)));
            case ANSWERED -> IDEMPOTENT.contains(method) && ((on.contains("5xx") && status >= 500)
                    || (on.contains("gateway-error") && status >= 502 && status <= 504)
                    || (on.contains("retriable-status-codes") && codes.contains(status)));
        };
    }

    /** The wait before retry {@code n} (1 = the first retry). */
    public Duration backoff(int n) {
        long ms = base.toMillis() << Math.min(n - 1, 20);
        return Duration.ofMillis(Math.min(ms, base.toMillis() * 10));
    }

    static Duration duration(com.google.protobuf.Duration d) {
        return Duration.ofSeconds(d.getSeconds(), d.getNanos());
    }
}
