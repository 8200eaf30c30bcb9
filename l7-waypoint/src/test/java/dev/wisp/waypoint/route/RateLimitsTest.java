package dev.wisp.waypoint.route;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Any;
import com.google.protobuf.UInt32Value;
import io.envoyproxy.envoy.config.core.v3.RuntimeFractionalPercent;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit;
import io.envoyproxy.envoy.type.v3.FractionalPercent;
import io.envoyproxy.envoy.type.v3.TokenBucket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The waypoint's token buckets on a fake clock (no sleeps): a route's bucket admits its size, then
 * refuses until a fill interval has passed; one bucket per virtual host and rule, kept across
 * configurations while the limit is the same; eight threads never take more than it holds.
 */
public class RateLimitsTest {
    static final String HOST = "server.default.svc.cluster.local:8080";
    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private final RateLimits limits = new RateLimits(now::get);

    /** A route limited as the control plane writes it: enabled and enforced for every request. */
    public static Route route(String rule, int tokens, int perFill, Duration fill) {
        FractionalPercent all = FractionalPercent.newBuilder().setNumerator(100).build();
        LocalRateLimit l = LocalRateLimit.newBuilder().setStatPrefix(rule)
                .setTokenBucket(TokenBucket.newBuilder().setMaxTokens(tokens)
                        .setTokensPerFill(UInt32Value.of(perFill)).setFillInterval(
                                com.google.protobuf.Duration.newBuilder().setSeconds(fill.toSeconds())
                                        .setNanos(fill.toNanosPart())))
                .setFilterEnabled(RuntimeFractionalPercent.newBuilder().setDefaultValue(all))
                .setFilterEnforced(RuntimeFractionalPercent.newBuilder().setDefaultValue(all)).build();
        return Route.newBuilder().setName(rule + "/match/0").putTypedPerFilterConfig(RateLimits.FILTER, Any.pack(l))
                .build();
    }

    private List<Boolean> take(Route r, int n) {
        List<Boolean> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(limits.take(HOST, r, 0.5).limited());
        }
        return out;
    }

    @Test
    void aBucketAdmitsItsSizeThenRefusesUntilItsFillIntervalHasPassed() {
        Route r = route("HTTPRoute/default/r/rule/0", 3, 2, Duration.ofSeconds(1));
        assertThat(take(r, 4)).containsExactly(false, false, false, true);
        assertThat(limits.take(HOST, r, 0.5)).isEqualTo(new RateLimits.Outcome("HTTPRoute/default/r/rule/0", true));
        now.addAndGet(Duration.ofMillis(499).toNanos());
        assertThat(take(r, 1)).as("half an interval less a millisecond: no token back yet").containsExactly(true);
        now.addAndGet(Duration.ofMillis(1).toNanos());
        assertThat(take(r, 2)).as("two per fill: one each half interval").containsExactly(false, true);
        now.addAndGet(Duration.ofSeconds(60).toNanos());
        assertThat(take(r, 4)).as("refilled to its size, not beyond").containsExactly(false, false, false, true);
    }

    @Test
    void aRouteWithoutALimitOrNotEnabledIsNeverLimited() {
        assertThat(limits.take(HOST, Route.newBuilder().setName("plain").build(), 0.0))
                .isEqualTo(RateLimits.Outcome.NONE);
        Route r = route("HTTPRoute/default/r/rule/0", 1, 1, Duration.ofSeconds(1));
        LocalRateLimit off;
        try {
            off = r.getTypedPerFilterConfigMap().get(RateLimits.FILTER).unpack(LocalRateLimit.class).toBuilder()
                    .clearFilterEnabled().build();
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new AssertionError(e);
        }
        Route disabled = r.toBuilder().putTypedPerFilterConfig(RateLimits.FILTER, Any.pack(off)).build();
        assertThat(take(disabled, 3)).as("Envoy's default for an absent filter_enabled: off")
                .containsExactly(false, false, false);
    }

    @Test
    void theRulesMatchesShareOneBucketAndTheSameLimitInANewConfigurationKeepsIt() {
        Route a = route("HTTPRoute/default/r/rule/0", 2, 1, Duration.ofMinutes(1));
        Route b = a.toBuilder().setName("HTTPRoute/default/r/rule/0/match/1").build();
        assertThat(take(a, 1)).containsExactly(false);
        assertThat(take(b, 1)).containsExactly(false);
        Route again = route("HTTPRoute/default/r/rule/0", 2, 1, Duration.ofMinutes(1));
        assertThat(take(again, 1)).as("a new configuration, the same limit: still empty").containsExactly(true);
        assertThat(limits.take("other.default.svc.cluster.local:80", a, 0.5).limited())
                .as("another virtual host has a bucket of its own").isFalse();
        Route changed = route("HTTPRoute/default/r/rule/0", 3, 1, Duration.ofMinutes(1));
        assertThat(take(changed, 4)).as("a changed limit starts a new, full bucket")
                .containsExactly(false, false, false, true);
        assertThat(take(route("HTTPRoute/default/r/rule/1", 1, 1, Duration.ofMinutes(1)), 2))
                .as("another rule").containsExactly(false, true);
    }

    @Test
    void eightThreadsTakingFromOneBucketNeverAdmitMoreThanItsTokens() throws Exception {
        Route r = route("HTTPRoute/default/r/rule/0", 1000, 1, Duration.ofHours(1));
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<Integer>> admitted = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                admitted.add(pool.submit(() -> {
                    go.await();
                    int n = 0;
                    for (int i = 0; i < 500; i++) {
                        // The clock moves too, by less than a token's interval in all.
                        now.addAndGet(100);
                        n += limits.take(HOST, r, 0.5).limited() ? 0 : 1;
                    }
                    return n;
                }));
            }
            go.countDown();
            int total = 0;
            for (Future<Integer> f : admitted) {
                total += f.get(60, TimeUnit.SECONDS);
            }
            assertThat(total).as("4,000 tries at a bucket of 1,000").isEqualTo(1000);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aHugeBucketAndIntervalDoNotOverflow() {
        Route r = route("HTTPRoute/default/r/rule/0", 1_000_000, 1, Duration.ofHours(24));
        assertThat(take(r, 3)).containsExactly(false, false, false);
        now.set(Long.MAX_VALUE - 1_000);
        assertThat(take(r, 1)).as("near the clock's end").containsExactly(false);
    }
}
