package dev.wisp.waypoint.route;

import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.extensions.filters.http.fault.v3.HTTPFault;
import io.envoyproxy.envoy.type.v3.FractionalPercent;
import java.time.Duration;
import java.util.random.RandomGenerator;

/**
 * Envoy's fault filter as the waypoint applies it, pure (the random source is an argument): a matched
 * route's {@value #FILTER} per-route configuration ({@link HTTPFault}, which the control plane writes
 * from a Wisp {@code HTTPFault} named by an {@code ExtensionRef} filter) draws, for each request, a
 * fixed delay and an abort, each under its own percentage; as in Envoy, a request both delayed and
 * aborted waits first, then is answered the abort's status without reaching a backend. Only the
 * fields the control plane writes are read: {@code delay.fixed_delay}, {@code abort.http_status} or
 * {@code abort.grpc_status} and their percentages (a header-controlled delay or abort or a response
 * rate limit is not applied). As in Envoy, an abort with a gRPC status answers a gRPC call that status
 * and any other request HTTP 200.
 */
public final class Faults {
    /** The filter name the control plane keys the route's fault configuration by. */
    public static final String FILTER = "envoy.filters.http.fault";

    private Faults() {}

    /**
     * What a route's fault does to one request.
     *
     * @param delay how long the request is held before it goes on; {@link Duration#ZERO} for none
     * @param abortStatus the HTTP status it is answered instead of being forwarded; 0 for none (200
     *        for an abort with a gRPC status)
     * @param grpcStatus the gRPC status a gRPC call is answered instead; -1 for none
     */
    public record Injected(Duration delay, int abortStatus, int grpcStatus) {
        public static final Injected NONE = new Injected(Duration.ZERO, 0);

        /** Without a gRPC status. */
        public Injected(Duration delay, int abortStatus) {
            this(delay, abortStatus, -1);
        }

        public boolean delayed() {
            return !delay.isZero();
        }

        public boolean aborted() {
            return abortStatus != 0;
        }
    }

    /** The fault {@code route} injects into one request, {@link Injected#NONE} when it has none or it is not drawn. */
    public static Injected draw(Route route, RandomGenerator random) {
        return draw(RouteActions.perFilter(route, FILTER, HTTPFault.class), random);
    }

    /** The fault {@code f} (a route's, already unpacked: {@link RouteFilters}; null for none) injects into one request. */
    public static Injected draw(HTTPFault f, RandomGenerator random) {
        if (f == null) {
            return Injected.NONE;
        }
        Duration delay = Duration.ZERO;
        if (f.hasDelay() && f.getDelay().hasFixedDelay()
                && drawn(f.getDelay().hasPercentage(), f.getDelay().getPercentage(), random)) {
            com.google.protobuf.Duration d = f.getDelay().getFixedDelay();
            delay = Duration.ofSeconds(d.getSeconds(), d.getNanos());
        }
        int abort = 0;
        int grpc = -1;
        boolean given = f.getAbort().getHttpStatus() != 0 || f.getAbort().hasGrpcStatus();
        if (given && drawn(f.getAbort().hasPercentage(), f.getAbort().getPercentage(), random)) {
            // Envoy answers a gRPC-status abort 200 (the status in grpc-status for a gRPC call).
            abort = f.getAbort().hasGrpcStatus() ? 200 : f.getAbort().getHttpStatus();
            grpc = f.getAbort().hasGrpcStatus() ? f.getAbort().getGrpcStatus() : -1;
        }
        return delay.isZero() && abort == 0 ? Injected.NONE : new Injected(delay, abort, grpc);
    }

    /** Whether a draw falls under {@code p}; 100 % when the fault gives none. */
    private static boolean drawn(boolean given, FractionalPercent p, RandomGenerator random) {
        return !given || random.nextDouble() < RouteActions.share(p);
    }
}
