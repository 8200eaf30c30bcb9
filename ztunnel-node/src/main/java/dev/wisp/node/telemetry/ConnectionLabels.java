package dev.wisp.node.telemetry;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.spiffe.SpiffeId;
import io.micrometer.core.instrument.Tags;
import java.util.Optional;
import java.util.Set;

/**
 * Istio's L4 metric labels for one connection, as ztunnel reports them. Unknown values are
 * {@code "unknown"}, as in Istio, so that label sets stay stable for dashboards.
 *
 * <p>{@code requestProtocol} is what carried the connection between the agents: {@link #H2} or
 * {@link #H3} (HBONE over HTTP/2 in TLS, or over HTTP/3 in QUIC), {@link #TCP} (not carried over
 * HBONE: plaintext inbound, passthrough outbound) or {@link #NOT_CARRIED} (an HBONE connection whose
 * framing is not chosen yet, or that was refused before it was). The metric label
 * {@code request_protocol} shows {@code h3} for HTTP/3 and Istio's {@code tcp} for everything else,
 * HBONE over HTTP/2 included (Istio's dashboards select on it); flow records show the value itself.
 */
public record ConnectionLabels(String reporter, Optional<Workload> source, Optional<SpiffeId> sourceIdentity,
        Optional<Workload> destination, Optional<SpiffeId> destinationIdentity, String destinationService,
        boolean mutualTls, String requestProtocol) {
    public static final String TCP = "tcp";
    public static final String H2 = "h2";
    public static final String H3 = "h3";
    public static final String NOT_CARRIED = "";

    public ConnectionLabels {
        if (!Set.of(TCP, H2, H3, NOT_CARRIED).contains(requestProtocol)) {
            throw new IllegalArgumentException("request protocol '" + requestProtocol + "': tcp, h2, h3 or empty");
        }
    }

    /** Labels of a connection not carried over HBONE: {@link #TCP}. */
    public ConnectionLabels(String reporter, Optional<Workload> source, Optional<SpiffeId> sourceIdentity,
            Optional<Workload> destination, Optional<SpiffeId> destinationIdentity, String destinationService,
            boolean mutualTls) {
        this(reporter, source, sourceIdentity, destination, destinationIdentity, destinationService, mutualTls, TCP);
    }

    /** These labels for a connection carried by {@code protocol} (one of the constants). */
    public ConnectionLabels withProtocol(String protocol) {
        return new ConnectionLabels(reporter, source, sourceIdentity, destination, destinationIdentity,
                destinationService, mutualTls, protocol);
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
                .and("request_protocol", H3.equals(requestProtocol) ? H3 : TCP)
                .and("response_flags", "-")
                .and("connection_security_policy", mutualTls ? "mutual_tls" : "unknown");
    }
}
