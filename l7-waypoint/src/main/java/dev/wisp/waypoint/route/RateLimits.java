package dev.wisp.waypoint.route;

import static java.util.Objects.requireNonNull;

import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit;
import io.envoyproxy.envoy.type.v3.TokenBucket;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * Envoy's local rate limit filter as the waypoint applies it: a matched route's {@value #FILTER}
 * per-route configuration ({@link LocalRateLimit}, which the control plane writes from a Wisp
 * {@code LocalRateLimit} named by an {@code ExtensionRef} filter) is a token bucket that every
 * connection of this waypoint takes from; a request finding it empty is answered 429 without reaching
 * a backend.
 *
 * <p>One bucket per virtual host and {@code stat_prefix} (the control plane writes the rule's name
 * there, so the routes of one rule's matches share it). A new configuration with the same bucket keeps
 * it (and its tokens); a changed {@code token_bucket} starts a new, full one. Buckets are refilled
 * continuously ({@code tokens_per_fill} over each {@code fill_interval}, as Envoy's atomic token
 * bucket does), as a GCRA in one {@link AtomicLong}: the instant the bucket is next full, moved on by
 * one token's interval per admitted request with a compare-and-set, so taking is lock-free. A route
 * without {@code filter_enabled} (Envoy's default: off) or not drawn under it is not limited; one not
 * drawn under {@code filter_enforced} is admitted whatever the bucket holds.
 */
public final class RateLimits {
    /** The filter name the control plane keys the route's rate limit configuration by. */
    public static final String FILTER = "envoy.filters.http.local_ratelimit";

    private final LongSupplier nanos;
    private final ConcurrentHashMap<String, Bucket> buckets = new ConcurrentHashMap<>();

    /** @param nanos a monotonic clock in nanoseconds ({@link System#nanoTime} but in tests) */
    public RateLimits(LongSupplier nanos) {
        this.nanos = requireNonNull(nanos, "nanos");
    }

    /**
     * What the route's limit did to one request.
     *
     * @param rule the limit's {@code stat_prefix} (the rule), null when the route has none
     * @param limited whether the request is to be answered 429
     */
    public record Outcome(String rule, boolean limited) {
        public static final Outcome NONE = new Outcome(null, false);
    }

    /**
     * Takes a token for one request routed by {@code route} of {@code virtualHost}.
     *
     * @param draw a uniform draw in [0, 1) for {@code filter_enabled} and {@code filter_enforced}
     */
    public Outcome take(String virtualHost, Route route, double draw) {
        return take(virtualHost, RouteActions.perFilter(route, FILTER, LocalRateLimit.class), draw);
    }

    /**
     * Takes a token for one request under {@code l}, a route's limit already unpacked ({@link RouteFilters};
     * null when it has none).
     */
    public Outcome take(String virtualHost, LocalRateLimit l, double draw) {
        if (l == null || !l.hasTokenBucket() || !l.hasFilterEnabled()
                || draw >= RouteActions.share(l.getFilterEnabled().getDefaultValue())) {
            return Outcome.NONE;
        }
        String key = virtualHost + "\n" + l.getStatPrefix();
        TokenBucket want = l.getTokenBucket();
        Bucket b = buckets.get(key);
        if (b == null || !b.config.equals(want)) {
            b = buckets.compute(key, (k, old) -> old != null && old.config.equals(want)
                    ? old
                    : new Bucket(want, nanos.getAsLong()));
        }
        boolean enforced = l.hasFilterEnforced() && draw < RouteActions.share(l.getFilterEnforced().getDefaultValue());
        return new Outcome(l.getStatPrefix(), !b.take(nanos.getAsLong()) && enforced);
    }

    /** A token bucket as a GCRA: {@code full} is the instant it is next full (at or before now: it is). */
    static final class Bucket {
        final TokenBucket config;
        /** How long one token takes to come back. */
        private final long interval;
        /** How far past now {@code full} may be: the bucket's size in intervals. */
        private final long window;
        private final AtomicLong full;

        Bucket(TokenBucket config, long now) {
            this.config = config;
            com.google.protobuf.Duration d = config.getFillInterval();
            long fill = Math.max(1, saturated(d.getSeconds(), 1_000_000_000L) + d.getNanos());
            long perFill = config.hasTokensPerFill() ? Math.max(1, config.getTokensPerFill().getValue()) : 1;
            this.interval = Math.max(1, fill / perFill);
            this.window = saturated(interval, Math.max(1, config.getMaxTokens()));
            this.full = new AtomicLong(now);
        }

        /** Whether a token was there at {@code now} (and is taken). */
        boolean take(long now) {
            while (true) {
                long f = full.get();
                long next = (f - now > 0 ? f : now) + interval;
                if (next - now > window) {
                    return false;
                }
                if (full.compareAndSet(f, next)) {
                    return true;
                }
            }
        }

        /** {@code a * b}, at most a quarter of the long range (decades of nanoseconds: never reached). */
        private static long saturated(long a, long b) {
            long cap = Long.MAX_VALUE / 4;
            return a != 0 && b > cap / a ? cap : Math.min(cap, a * b);
        }
    }
}
