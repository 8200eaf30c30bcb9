package dev.wisp.controlplane.model;

import java.net.InetAddress;
import java.util.List;

/**
 * A {@code discovery.k8s.io/v1 EndpointSlice}: part of one Service's endpoints as the cluster's
 * EndpointSlice controller (or whoever manages the slice) computed them. When a Service has
 * slices, they, not its selector, say which pods serve it ({@link ServiceEndpoints}).
 *
 * @param serviceName the {@code kubernetes.io/service-name} label: the Service of this namespace
 * @param endpoints {@code endpoints[]}
 * @param ports {@code ports[]}: the target port of each named service port
 */
public record EndpointSlice(ObjectRef ref, String serviceName, List<Endpoint> endpoints, List<SlicePort> ports)
        implements
            MeshObject {
    public static final String KIND = "EndpointSlice";
    public static final String API_VERSION = "discovery.k8s.io/v1";
    public static final String SERVICE_LABEL = "kubernetes.io/service-name";

    /**
     * One endpoint.
     *
     * @param ready {@code conditions.ready} (absent counts as ready, as Kubernetes says)
     * @param pod {@code targetRef.name} when the target is a Pod, else empty
     */
    public record Endpoint(List<InetAddress> addresses, boolean ready, String pod) {}

    /** {@code ports[]}: {@code name} (empty when unnamed) and the endpoints' port number. */
    public record SlicePort(String name, int port) {}
}
