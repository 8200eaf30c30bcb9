package dev.wisp.controlplane.route;

import dev.wisp.controlplane.model.LocalRateLimit;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.RouteParts.HeaderModifier;
import dev.wisp.controlplane.model.RouteParts.Retry;
import dev.wisp.controlplane.model.RouteParts.Timeouts;
import dev.wisp.controlplane.route.HttpRequest.Header;
import java.time.Duration;
import java.util.List;

/**
 * What a waypoint does with one request.
 *
 * @param status 200 when forwarded, 301/302 for a redirect, 404 no matching rule, 500 invalid
 *        backend or an ExtensionRef to no object, 503 no endpoints, an HTTPFault's abort status
 * @param route the HTTPRoute/GRPCRoute that matched, or null (no route attached, or none matched)
 * @param rule the index of the matching rule, or -1
 * @param backend the chosen backend when forwarded, else null
 * @param path path (and query) as sent upstream, null unless forwarded
 * @param host authority as sent upstream, null unless forwarded
 * @param requestHeaders the request's headers after the filters (names lower-case)
 * @param location the redirect's {@code Location}, else null
 * @param mirrors backends a copy of the request goes to
 * @param responseModifiers ResponseHeaderModifier filters to apply to the answer, in order
 * @param reason one sentence for the operator
 * @param delay how long an HTTPFault holds the request before it goes on, or null
 * @param rateLimit the LocalRateLimit whose bucket the request takes a token from, or null; the
 *        decision is the one made when a token is there (429 when the waypoint's bucket is empty)
 * @param grpcStatus the gRPC status an HTTPFault's abort answers a gRPC call with (status is then
 *        200, what Envoy answers any other request), or null
 */
public record RouteDecision(int status, ObjectRef route, int rule, BackendRef backend, String path, String host,
        List<Header> requestHeaders, String location, List<BackendRef> mirrors,
        List<HeaderModifier> responseModifiers, Timeouts timeouts, Retry retry, String reason, Duration delay,
        LocalRateLimit rateLimit, Integer grpcStatus) {

    /** This decision, the request held {@code d} first. */
    RouteDecision delayed(Duration d) {
        return new RouteDecision(status, route, rule, backend, path, host, requestHeaders, location, mirrors,
                responseModifiers, timeouts, retry, reason + " after a delay of " + d.toMillis() + " ms", d, rateLimit,
                grpcStatus);
    }

    /** This decision, a token taken from {@code limit}'s bucket first (none when null). */
    RouteDecision limited(LocalRateLimit limit) {
        return limit == null
                ? this
                : new RouteDecision(status, route, rule, backend, path, host, requestHeaders, location, mirrors,
                        responseModifiers, timeouts, retry, reason + ", rate limited by " + LocalRateLimit.KIND + " "
                                + limit.ref().qualifiedName(),
                        delay, limit, grpcStatus);
    }

    /** This decision, a gRPC call answered {@code code} (any other request 200). */
    RouteDecision grpc(int code) {
        return new RouteDecision(200, route, rule, backend, path, host, requestHeaders, location, mirrors,
                responseModifiers, timeouts, retry, reason + " with grpc-status " + code, delay, rateLimit, code);
    }

    public boolean forwarded() {
        return status == 200 && grpcStatus == null;
    }
}
