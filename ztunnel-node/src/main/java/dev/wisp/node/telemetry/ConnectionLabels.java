package dev.wisp.node.telemetry;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.spiffe.SpiffeId;
import io.micrometer.core.instrument.Tags;
import java.util.Optional;

/**
 * Istio's L4 metric labels for one connection, as ztunnel reports them. Unknown values are
 * {@code "unknown"}, as in Istio, so that label sets stay stable for dashboards.
 *
 * <p>{@code requestProtocol} is {@code tcp} (Istio's value for every L4 connection, HBONE over
 * HTTP/2 included) except for a connection carried by HBONE over HTTP/3: {@code h3}.
 */
public record ConnectionLabels(String reporter, Optional<Workload> source, Optional<SpiffeId> sourceIdentity,
        Optional<Workload> destination, Optional<SpiffeId> destinationIdentity, String destinationService,
        boolean mutualTls, String requestProtocol) {

    /** Labels of a connection not carried over HTTP/3: {@code request_protocol="tcp"}. */
    public ConnectionLabels(String reporter, Optional<Workload> source, Optional<SpiffeId> sourceIdentity,
            Optional<Workload> destination, Optional<SpiffeId> destinationIdentity, String destinationService,
            boolean mutualTls) {
        this(reporter, source, sourceIdentity, destination, destinationIdentity, destinationService, mutualTls,
                "tcp");
    }

    /** These labels for a connection carried by HBONE over {@code hboneProtocol} ({@code h2} or {@code h3}). */
    public ConnectionLabels withProtocol(String hboneProtocol) {
        return new ConnectionLabels(reporter, source, sourceIdentity, destination, destinationIdentity,
                destinationService, mutualTls, "h3".equals(hboneProtocol) ? "h3" : "tcp");
    }

    private static String or(String s) {
        return s == null || s.isEmpty() ? "unknown" : s;
    }

    /** The label set, in Istio's names. */
    public Tags tags() {
        String svcName = destinationService.isEmpty() ? "unknown" : destinationService.split("\\.")[0];
        String svcNs = destinationService.contains(".") ? destinationService.split("\\.")[1] : "unknown";
        return Tags.of("reporter", reporter)
                .and("source_workload", or(source.map(Workload::getWorkloadName).orElse(null)))
                .and("source_workload_namespace", or(source.map(Workload::getNamespace).orElse(null)))
                .and("source_principal", or(sourceIdentity.map(SpiffeId::toString).orElse(null)))
                .and("source_app", or(source.map(Workload::getCanonicalName).orElse(null)))
                .and("source_version", or(source.map(Workload::getCanonicalRevision).orElse(null)))
                .and("destination_workload", or(destination.map(Workload::getWorkloadName).orElse(null)))
                .and("destination_workload_namespace", or(destination.map(Workload::getNamespace).orElse(null)))
                .and("destination_principal", or(destinationIdentity.map(SpiffeId::toString).orElse(null)))
                .and("destination_app", or(destination.map(Workload::getCanonicalName).orElse(null)))
                .and("destination_version", or(destination.map(Workload::getCanonicalRevision).orElse(null)))
                .and("destination_service", or(destinationService))
                .and("destination_service_name", svcName)
                .and("destination_service_namespace", svcNs)
                .and("request_protocol", requestProtocol)
                .and("response_flags", "-")
                .and("connection_security_policy", mutualTls ? "mutual_tls" : "unknown");
    }
}
