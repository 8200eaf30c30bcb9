package dev.wisp.waypoint.proxy;

import dev.wisp.waypoint.route.Retries;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * One request's attempts at a cluster, on one event loop: each attempt goes to the next endpoint
 * ({@link ClusterTries#next}), is cut by the per-try timeout, and is followed by another after the
 * backoff while {@link Retries#retry} says so; the route's timeout bounds them all (504 when it
 * passes, the attempt in flight cancelled). The request is sent as a copy per attempt and released
 * when the attempts end.
 */
final class Attempts {
    /**
     * How the request ended.
     *
     * @param response the backend's answer (the caller releases it), or null when the waypoint answers
     *        {@code status} itself
     * @param attempts how many attempts were sent
     * @param where the cluster and the last endpoint tried, for the log
     */
    record Result(FullHttpResponse response, int status, String reason, int attempts, String where,
            Forwarder.Endpoint endpoint) {}

    private final ClusterTries tries;
    private final Retries plan;
    private final FullHttpRequest request;
    private final boolean h2;
    private final EventExecutor loop;
    private final Promise<Result> result;
    private Future<FullHttpResponse> inFlight;
    private ScheduledFuture<?> deadline;

    private Attempts(ClusterTries tries, FullHttpRequest request, boolean h2, EventExecutor loop) {
        this.tries = tries;
        this.plan = tries.plan;
        this.request = request;
        this.h2 = h2;
        this.loop = loop;
        this.result = loop.newPromise();
    }

    /**
     * Sends {@code request} (released when done) by {@code tries}, in the HTTP version its cluster says
     * ({@link ClusterTries#http2}), else as HTTP/2 when the client spoke it ({@code h2}); call on
     * {@code loop}.
     */
    static Future<Result> run(ClusterTries tries, FullHttpRequest request, boolean h2, EventExecutor loop) {
        Attempts a = new Attempts(tries, request, tries.http2(h2), loop);
        a.result.addListener(x -> request.release());
        long total = a.plan.timeout().toMillis();
        if (total > 0) {
            a.deadline = loop.schedule(() -> a.end(null, 504, "no answer within " + total + " ms"), total,
                    TimeUnit.MILLISECONDS);
        }
        a.attempt(1);
        return a.result;
    }

    private void attempt(int n) {
        if (result.isDone()) {
            return;
        }
        Forwarder.Endpoint endpoint;
        try {
            endpoint = tries.next();
        } catch (Forwarder.Failure e) {
            end(null, e.status(), e.getMessage());
            return;
        }
        Future<FullHttpResponse> answer = tries.forwarder.send(request.retainedDuplicate(), endpoint, h2, loop);
        inFlight = answer;
        long perTry = plan.perTry().toMillis();
        ScheduledFuture<?> cut = perTry == 0
                ? null
                : loop.schedule(() -> answer.cancel(false), perTry, TimeUnit.MILLISECONDS);
        answer.addListener((Future<FullHttpResponse> a) -> {
            if (cut != null) {
                cut.cancel(false);
            }
            if (result.isDone()) {
                if (a.isSuccess()) {
                    a.getNow().release();
                }
                return;
            }
            String method = request.method().name();
            if (a.isSuccess()) {
                FullHttpResponse r = a.getNow();
                int status = r.status().code();
                if (plan.retry(n, method, Retries.Outcome.ANSWERED, status)) {
                    r.release();
                    later(n);
                } else {
                    end(r, status, "forwarded");
                }
                return;
            }
            boolean cutByTimer = a.isCancelled();
            Retries.Outcome outcome = !cutByTimer && a.cause() instanceof Forwarder.Failure f && f.unsent()
                    ? Retries.Outcome.CONNECT_FAILURE
                    : Retries.Outcome.NO_ANSWER;
            int status = cutByTimer ? 504 : a.cause() instanceof Forwarder.Failure f ? f.status() : 503;
            String reason = cutByTimer
                    ? "no answer within the per-try timeout of " + perTry + " ms"
                    : a.cause().getMessage();
            if (plan.retry(n, method, outcome, status)) {
                later(n);
            } else {
                end(null, status, reason);
            }
        });
    }

    private void later(int n) {
        loop.schedule(() -> attempt(n + 1), plan.backoff(n).toMillis(), TimeUnit.MILLISECONDS);
    }

    private void end(FullHttpResponse response, int status, String reason) {
        if (deadline != null) {
            deadline.cancel(false);
        }
        if (!result.trySuccess(tries.result(response, status, reason))) {
            if (response != null) {
                response.release();
            }
            return;
        }
        if (inFlight != null && !inFlight.isDone()) {
            inFlight.cancel(false);
        }
    }

}
