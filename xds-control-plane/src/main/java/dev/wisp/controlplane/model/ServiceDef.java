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

    /**
     * {@code spec.ports[]}: {@code targetPort} equals {@code port} when absent.
     *
     * @param targetPort the target's number; 0 when the target is named
     * @param targetPortName a named {@code targetPort}: each pod's container port of that name; null
     *            when the target is a number
     * @param appProtocol {@code appProtocol} as written ({@code http}, {@code http2}, {@code grpc},
     *            {@code kubernetes.io/h2c}, …); null when absent
     */
    public record ServicePort(String name, int port, int targetPort, String targetPortName, String appProtocol) {
        /** A port whose target is a number. */
        public ServicePort(String name, int port, int targetPort) {
            this(name, port, targetPort, null, null);
        }

        /** A port without {@code appProtocol}. */
        public ServicePort(String name, int port, int targetPort, String targetPortName) {
            this(name, port, targetPort, targetPortName, null);
        }

        /** The port this reaches on {@code pod}: the number, or the pod's port of that name (empty: none). */
        public java.util.OptionalInt targetOn(Pod pod) {
            if (targetPortName == null) {
                return java.util.OptionalInt.of(targetPort);
            }
            Integer named = pod.namedPorts().get(targetPortName);
            return named == null ? java.util.OptionalInt.empty() : java.util.OptionalInt.of(named);
        }
    }
}
