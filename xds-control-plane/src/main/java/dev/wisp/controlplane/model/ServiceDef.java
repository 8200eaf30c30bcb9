package dev.wisp.controlplane.model;

import java.net.InetAddress;
import java.util.List;
import java.util.Map;

/**
 * A service: core {@code v1 Service} (selector, cluster IPs, ports). Its endpoints are the pods of
 * its namespace whose labels match the selector, as an EndpointSlice controller would compute.
 *
 * @param labels {@code metadata.labels} (the mesh reads {@code istio.io/use-waypoint})
 */
public record ServiceDef(ObjectRef ref, Map<String, String> selector, List<InetAddress> clusterIps,
        List<ServicePort> ports, Map<String, String> labels) implements MeshObject {
    public static final String KIND = "Service";

    /** A service without labels (labels only select a waypoint). */
    public ServiceDef(ObjectRef ref, Map<String, String> selector, List<InetAddress> clusterIps,
            List<ServicePort> ports) {
        this(ref, selector, clusterIps, ports, Map.of());
    }

    /** The service's DNS name, {@code name.namespace.svc.<clusterDomain>}. */
    public String hostname(String clusterDomain) {
        return ref.name() + "." + ref.namespace() + ".svc." + clusterDomain;
    }

    /** {@code spec.ports[]}: {@code targetPort} equals {@code port} when absent. */
    public record ServicePort(String name, int port, int targetPort) {}
}
