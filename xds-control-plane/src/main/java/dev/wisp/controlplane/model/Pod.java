package dev.wisp.controlplane.model;

import java.net.InetAddress;
import java.util.List;
import java.util.Map;

/**
 * A workload: core {@code v1 Pod} as Kubernetes reports it (the fields the mesh uses).
 *
 * @param uid {@code metadata.uid}, or a stable one derived from namespace and name
 * @param nodeName {@code spec.nodeName}: the node whose agent serves it
 * @param serviceAccount {@code spec.serviceAccountName} ({@code default} when absent)
 * @param ips {@code status.podIPs} (or {@code status.podIP})
 * @param ready false when {@code status.phase} is set and is not {@code Running}
 * @param namedPorts {@code spec.containers[].ports[]} that have a name: name → container port (what
 *            a Service's named {@code targetPort} resolves to)
 */
public record Pod(ObjectRef ref, String uid, Map<String, String> labels, String nodeName, String serviceAccount,
        List<InetAddress> ips, boolean ready, Map<String, Integer> namedPorts) implements MeshObject {
    public static final String KIND = "Pod";

    /** A pod whose containers name no port. */
    public Pod(ObjectRef ref, String uid, Map<String, String> labels, String nodeName, String serviceAccount,
            List<InetAddress> ips, boolean ready) {
        this(ref, uid, labels, nodeName, serviceAccount, ips, ready, Map.of());
    }

    /**
     * The workload this pod belongs to, as Istio names it: the label {@code app.kubernetes.io/name},
     * else {@code app}, else the pod's name (the workload xDS {@code workload_name} and the waypoint's
     * {@code destination_workload}).
     */
    public String workloadName() {
        for (String k : new String[]{"app.kubernetes.io/name", "app"}) {
            String v = labels.get(k);
            if (v != null && !v.isEmpty()) {
                return v;
            }
        }
        return ref.name();
    }
}
