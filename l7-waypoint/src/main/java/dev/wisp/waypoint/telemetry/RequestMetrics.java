package dev.wisp.waypoint.telemetry;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * The waypoint's Istio request series, one observation per HTTP request it answers (forwarded or
 * answered by itself): {@code istio_requests_total}, and the histograms {@code
 * istio_request_duration_milliseconds}, {@code istio_request_bytes} and {@code istio_response_bytes}
 * (Istio's buckets), labelled as Istio's proxies label them with {@code reporter="waypoint"}: a gRPC
 * request has {@code request_protocol="grpc"} and its {@code grpc_response_status} (empty for others).
 *
 * <p>What the waypoint knows fills the labels; what it does not is {@code unknown}, Istio's value for
 * it. The source is what the waypoint verified: the peer's certificate ({@code source_principal},
 * {@code source_workload_namespace}). Its workload stays {@code unknown}: a certificate proves a
 * namespace and a service account, which several workloads may share, and the waypoint holds no
 * workload state to look the client's address up in (nor would an address the client's agent claims
 * be verified). The destination service is the virtual host the request was routed on (the control
 * plane names it {@code <host>:<port>}); when the request was forwarded, the destination principal
 * and workload are the chosen endpoint's, from the tunnel metadata the control plane writes on each
 * EDS endpoint ({@code wisp.dev/hbone}: {@code identity}, {@code workload}).
 *
 * <p>Thread-safe (Micrometer meters); called on the streams' event loops. Owns nothing to close.
 */
public final class RequestMetrics {
    public static final String UNKNOWN = "unknown";
    /** Istio's default request duration buckets, milliseconds. */
    private static final double[] DURATION_BUCKETS = {0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
            30000, 60000, 300000, 600000, 1800000, 3600000};
    /** Istio's size buckets, bytes (powers of ten). */
    private static final double[] SIZE_BUCKETS = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
            1000000000};

    /**
     * At most this many label sets keep their meters here; past it a request's meters are looked up in the
     * registry (the same series, found by its tags, more slowly), so peers cannot grow this map without end.
     */
    static final int MAX_SERIES = 4096;

    private final MeterRegistry registry;
    /**
     * The meters of each label set seen: a request's labels are compared as this key, not built into
     * {@link Tags} (fifteen sorted pairs) and looked up four times in the registry per request.
     */
    private final Map<Key, Series> series = new ConcurrentHashMap<>();

    /** What a request's labels are made of. */
    private record Key(Optional<SpiffeId> source, String virtualHost, Optional<Upstream> upstream, int status,
            String grpcStatus) {}

    /** The Istio request series of one label set. */
    private record Series(Counter requests, DistributionSummary duration, DistributionSummary requestBytes,
            DistributionSummary responseBytes) {}

    public RequestMetrics(MeterRegistry registry) {
        this.registry = requireNonNull(registry, "registry");
    }

    /**
     * One answered request.
     *
     * @param source the peer's SPIFFE ID (its certificate), if it presented one
     * @param virtualHost the name of the virtual host it was routed on ({@code <host>:<port>}), or null
     *     when none serves the tunnel's target
     * @param upstream the endpoint the request was forwarded to, else empty
     * @param status the HTTP status the client was answered
     * @param requestBytes the request body's size
     * @param responseBytes the response body's size
     * @param durationNanos from the request read to the answer written
     * @param grpcStatus the gRPC status the client was answered, for a gRPC request; else null
     */
    public record Request(Optional<SpiffeId> source, String virtualHost, Optional<Upstream> upstream, int status,
            long requestBytes, long responseBytes, long durationNanos, String grpcStatus) {
        public Request {
            requireNonNull(source, "source");
            requireNonNull(upstream, "upstream");
        }
    }

    /**
     * The endpoint a request was forwarded to, as its EDS metadata names it.
     *
     * @param identity the endpoint's SPIFFE ID
     * @param workload its workload name ({@code unknown} when the metadata has none)
     */
    public record Upstream(SpiffeId identity, String workload) {
        public Upstream {
            requireNonNull(identity, "identity");
            workload = workload == null || workload.isBlank() ? UNKNOWN : workload;
        }
    }

    /** Counts {@code r} in every series. */
    public void record(Request r) {
        requireNonNull(r, "r");
        Key key = new Key(r.source(), r.virtualHost(), r.upstream(), r.status(), r.grpcStatus());
        Series s = series.get(key);
        if (s == null) {
            s = register(tags(r));
            if (series.size() < MAX_SERIES) {
                series.putIfAbsent(key, s);
            }
        }
        s.requests().increment();
        s.duration().record(TimeUnit.NANOSECONDS.toMicros(r.durationNanos()) / 1000.0);
        s.requestBytes().record(r.requestBytes());
        s.responseBytes().record(r.responseBytes());
    }

    /** The four meters of one label set, registered (or found) in the registry. */
    private Series register(Tags tags) {
        return new Series(Counter.builder("istio_requests").description("requests the waypoint answered").tags(tags)
                .register(registry),
                DistributionSummary.builder("istio_request_duration_milliseconds").description(
                        "request durations at the waypoint").serviceLevelObjectives(DURATION_BUCKETS).tags(tags)
                        .register(registry),
                DistributionSummary.builder("istio_request_bytes").description(
                        "request body sizes at the waypoint").serviceLevelObjectives(SIZE_BUCKETS).tags(tags)
                        .register(registry),
                DistributionSummary.builder("istio_response_bytes").description(
                        "response body sizes at the waypoint").serviceLevelObjectives(SIZE_BUCKETS)
                        .tags(tags).register(registry));
    }

    /**
     * One check of a CUSTOM policy's external authorizer ({@code wisp_waypoint_ext_authz_total}): the
     * provider's name and the result ({@code allowed}, {@code denied}, {@code error}, {@code error_allowed}).
     */
    public void extAuthz(String provider, String result) {
        Counter.builder("wisp_waypoint_ext_authz").description("checks of external authorizers (CUSTOM policies)")
                .tags("provider", provider, "result", result).register(registry).increment();
    }

    /**
     * One fault injected by a route's HTTPFault ({@code wisp_waypoint_faults_injected_total}); the
     * request is counted in the Istio series too, an abort with its status.
     *
     * @param kind {@code delay} or {@code abort}
     */
    public void fault(String kind, String virtualHost) {
        Counter.builder("wisp_waypoint_faults_injected").description("faults injected by routes' HTTPFaults")
                .tag("kind", kind).tag("destination_service", virtualHost == null ? UNKNOWN : virtualHost)
                .register(registry).increment();
    }

    /**
     * One request a route's LocalRateLimit refused ({@code wisp_waypoint_rate_limited_total}, by the
     * rule, its {@code stat_prefix}); the request is counted in the Istio series too, with 429.
     */
    public void rateLimited(String rule, String virtualHost) {
        Counter.builder("wisp_waypoint_rate_limited").description("requests refused by routes' LocalRateLimits")
                .tag("route", rule).tag("destination_service", virtualHost == null ? UNKNOWN : virtualHost)
                .register(registry).increment();
    }

    static Tags tags(Request r) {
        String host = UNKNOWN;
        String name = UNKNOWN;
        String namespace = UNKNOWN;
        if (r.virtualHost() != null && !r.virtualHost().isBlank()) {
            int colon = r.virtualHost().lastIndexOf(':');
            host = colon > 0 ? r.virtualHost().substring(0, colon) : r.virtualHost();
            // <name>.<namespace>.svc.<cluster domain>
            String[] parts = host.split("\\.");
            if (parts.length >= 3 && parts[2].equals("svc")) {
                name = parts[0];
                namespace = parts[1];
            }
        }
        return Tags.of("reporter", "waypoint", "request_protocol", r.grpcStatus() == null ? "http" : "grpc",
                "response_code", String.valueOf(r.status()), "grpc_response_status", r.grpcStatus() == null
                        ? ""
                        : r.grpcStatus(),
                "connection_security_policy", r.source().isPresent() ? "mutual_tls" : "none")
                .and("source_principal", r.source().map(SpiffeId::toString).orElse(UNKNOWN))
                .and("source_workload", UNKNOWN)
                .and("source_workload_namespace", r.source().map(RequestMetrics::namespace).orElse(UNKNOWN))
                .and("destination_principal", r.upstream().map(u -> u.identity().toString()).orElse(UNKNOWN))
                .and("destination_workload", r.upstream().map(Upstream::workload).orElse(UNKNOWN))
                .and("destination_workload_namespace", r.upstream().map(u -> namespace(u.identity())).orElse(
                        namespace))
                .and("destination_service", host)
                .and("destination_service_name", name)
                .and("destination_service_namespace", namespace);
    }

    private static String namespace(SpiffeId id) {
        return id.namespace().orElse(UNKNOWN);
    }
}
