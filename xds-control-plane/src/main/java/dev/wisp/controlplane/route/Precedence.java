package dev.wisp.controlplane.route;

import dev.wisp.controlplane.model.GrpcRoute;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.RouteParts.PathType;
import java.time.Instant;
import java.util.Arrays;
import java.util.Comparator;
import java.util.function.Function;
import java.util.function.ToIntFunction;

/**
 * The Gateway API's precedence between matches of the routes attached to one service port, shared
 * by the {@link RouteEngine} (which picks the first matching one per request) and the Envoy
 * translation (which orders an Envoy route list by it, since Envoy takes the first route that
 * matches). Pure and stateless.
 */
public final class Precedence {
    private Precedence() {}

    /**
     * HTTPRoute: exact path, then RegularExpression (the API leaves its rank open), then the longest
     * prefix, then a method, then most headers, then most query parameters.
     */
    public static int[] rank(HttpRoute.Match match) {
        PathType t = match.path().type();
        int pathRank = t == PathType.EXACT ? 3 : t == PathType.REGULAR_EXPRESSION ? 2 : 1;
        int prefixLength = t == PathType.PATH_PREFIX ? Matching.trimPrefix(match.path().value()).length() : 0;
        return new int[]{pathRank, prefixLength, match.method() == null ? 0 : 1, match.headers().size(),
                match.query().size()};
    }

    /** GRPCRoute: characters of the service, then of the method, then the number of header matches. */
    public static int[] rank(GrpcRoute.Match match) {
        return new int[]{length(match.service()), length(match.method()), match.headers().size()};
    }

    /**
     * Larger rank first, then the older route (no timestamp last), then "namespace/name", then rule
     * and match order.
     */
    public static <T> Comparator<T> order(Function<T, int[]> rank, Function<T, Instant> created,
            Function<T, ObjectRef> route, ToIntFunction<T> rule, ToIntFunction<T> match) {
        return Comparator.<T, int[]>comparing(rank, (a, b) -> Arrays.compare(b, a))
                .thenComparing(created, Comparator.nullsLast(Comparator.naturalOrder()))
                .thenComparing(t -> route.apply(t).qualifiedName())
                .thenComparingInt(rule)
                .thenComparingInt(match);
    }

    /** {@code prefix} followed by {@code rank}: a hostname rank before the per-kind one. */
    static int[] concat(int[] prefix, int[] rank) {
        int[] out = Arrays.copyOf(prefix, prefix.length + rank.length);
        System.arraycopy(rank, 0, out, prefix.length, rank.length);
        return out;
    }

    private static int length(String s) {
        return s == null ? 0 : s.length();
    }
}
