package dev.wisp.waypoint.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.spiffe.SpiffeId;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The labels of the waypoint's request series: the destination workload, namespace and principal are
 * the forwarded-to endpoint's (its EDS metadata), the source is only what the client's certificate
 * proves (namespace and principal; the workload stays {@code unknown}).
 */
class RequestMetricsTest {
    static final SpiffeId CLIENT = SpiffeId.forServiceAccount("cluster.local", "shop", "client");
    static final SpiffeId REVIEWS = SpiffeId.forServiceAccount("cluster.local", "shop", "reviews");

    static Map<String, String> labels(RequestMetrics.Request r) {
        Map<String, String> out = new LinkedHashMap<>();
        for (Tag t : RequestMetrics.tags(r)) {
            out.put(t.getKey(), t.getValue());
        }
        return out;
    }

    @Test
    void aForwardedRequestIsLabelledWithTheEndpointsWorkloadAndTheClientsVerifiedIdentity() {
        Map<String, String> l = labels(new RequestMetrics.Request(Optional.of(CLIENT),
                "reviews.shop.svc.cluster.local:9080", Optional.of(new RequestMetrics.Upstream(REVIEWS, "reviews-v2")),
                200, 10, 20, 1_000_000, null));
        assertThat(l).containsEntry("destination_workload", "reviews-v2")
                .containsEntry("destination_workload_namespace", "shop")
                .containsEntry("destination_principal", "spiffe://cluster.local/ns/shop/sa/reviews")
                .containsEntry("destination_service", "reviews.shop.svc.cluster.local")
                .containsEntry("destination_service_name", "reviews")
                .containsEntry("source_principal", "spiffe://cluster.local/ns/shop/sa/client")
                .containsEntry("source_workload_namespace", "shop")
                .containsEntry("source_workload", "unknown")
                .containsEntry("reporter", "waypoint")
                .containsEntry("response_code", "200")
                .containsEntry("request_protocol", "http").containsEntry("grpc_response_status", "");
    }

    @Test
    void anEndpointWithoutAWorkloadNameAndAnAnsweredRequestAreUnknown() {
        assertThat(new RequestMetrics.Upstream(REVIEWS, "").workload()).isEqualTo("unknown");
        assertThat(new RequestMetrics.Upstream(REVIEWS, null).workload()).isEqualTo("unknown");
        Map<String, String> l = labels(new RequestMetrics.Request(Optional.empty(),
                "reviews.shop.svc.cluster.local:9080", Optional.empty(), 404, 0, 5, 1000, null));
        assertThat(l).containsEntry("destination_workload", "unknown")
                .containsEntry("destination_principal", "unknown")
                .containsEntry("destination_workload_namespace", "shop")
                .containsEntry("source_principal", "unknown")
                .containsEntry("connection_security_policy", "none");
    }

    @Test
    void aGrpcRequestIsLabelledGrpcWithItsStatus() {
        Map<String, String> l = labels(new RequestMetrics.Request(Optional.of(CLIENT),
                "reviews.shop.svc.cluster.local:9080", Optional.empty(), 200, 0, 0, 1000, "12"));
        assertThat(l).containsEntry("request_protocol", "grpc").containsEntry("grpc_response_status", "12")
                .containsEntry("response_code", "200");
    }

    /**
     * The meters of a label set are kept, not looked up per request: requests with equal labels add to
     * one series, another status starts another, and past {@link RequestMetrics#MAX_SERIES} label sets a
     * request is still counted, in the registry's series of its labels.
     */
    @Test
    void requestsWithEqualLabelsShareTheirSeriesAndEveryRequestIsCountedPastTheCache() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        RequestMetrics metrics = new RequestMetrics(registry);
        for (int i = 0; i < 3; i++) {
            metrics.record(new RequestMetrics.Request(Optional.of(CLIENT), "reviews.shop.svc.cluster.local:9080",
                    Optional.of(new RequestMetrics.Upstream(REVIEWS, "reviews-v2")), 200, 10, 1024, 2_000_000, null));
        }
        metrics.record(new RequestMetrics.Request(Optional.of(CLIENT), "reviews.shop.svc.cluster.local:9080",
                Optional.empty(), 503, 10, 0, 1_000_000, null));
        assertThat(registry.get("istio_requests").tag("response_code", "200").counter().count()).isEqualTo(3);
        assertThat(registry.get("istio_requests").tag("response_code", "503").counter().count()).isEqualTo(1);
        assertThat(registry.get("istio_response_bytes").tag("response_code", "200").summary().totalAmount())
                .isEqualTo(3 * 1024);
        assertThat(registry.get("istio_request_duration_milliseconds").tag("response_code", "200").summary()
                .totalAmount()).isEqualTo(6.0);
        int more = RequestMetrics.MAX_SERIES + 10;
        for (int i = 0; i < more; i++) {
            metrics.record(new RequestMetrics.Request(Optional.of(SpiffeId.forServiceAccount("cluster.local", "shop",
                    "c" + i)), "reviews.shop.svc.cluster.local:9080", Optional.empty(), 200, 0, 0, 1000, null));
            metrics.record(new RequestMetrics.Request(Optional.of(SpiffeId.forServiceAccount("cluster.local", "shop",
                    "c" + i)), "reviews.shop.svc.cluster.local:9080", Optional.empty(), 200, 0, 0, 1000, null));
        }
        String last = "spiffe://cluster.local/ns/shop/sa/c" + (more - 1);
        assertThat(registry.get("istio_requests").tag("source_principal", last).counter().count()).isEqualTo(2);
        assertThat(registry.get("istio_requests").counters()).hasSize(more + 2);
    }
}
