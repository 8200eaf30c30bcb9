package dev.wisp.controlplane.translate;

import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.controlplane.model.Gateway;
import dev.wisp.controlplane.model.MeshConfig;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.Namespace;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.controlplane.model.WaypointNames;
import dev.wisp.spiffe.SpiffeId;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Which waypoint serves a Service or a Pod, as the workload xDS {@code waypoint} field says it (pure,
 * built once per translation). A waypoint is a Gateway of a waypoint class with the mesh HBONE listener
 * ({@link WaypointNames#declaresWaypoint}); it runs in the pods of its namespace labelled
 * {@code gateway.networking.k8s.io/gateway-name: <gateway>}, and its address is the first ready such pod's
 * (by name), its identity that pod's service account, as the agents verify it from the certificate.
 *
 * <p>An object opts in with {@code use-waypoint} on itself, else on its namespace ({@code none} opts out
 * of a namespace's waypoint), the waypoint living in {@code use-waypoint-namespace} or the object's own
 * namespace. Services take a waypoint whose {@code waypoint-for} is {@code service} or {@code all}, pods
 * one whose is {@code workload} or {@code all}, as in Istio. A waypoint's own pods never get one (their
 * traffic would loop). A label naming no waypoint, or a waypoint without a ready pod, is a warning on
 * the labelled object or the Gateway, and its traffic goes direct, as Istio's does when the waypoint
 * is missing.
 */
public final class Waypoints {
    private final WaypointNames names;
    private final Map<String, Map<String, String>> namespaceLabels = new HashMap<>();
    /** "ns/name" of each declared waypoint → its address, or empty when it has no ready pod. */
    private final Map<String, Optional<GatewayAddress>> declared = new HashMap<>();
    private final Map<String, Gateway> gateways = new HashMap<>();
    private final Map<ObjectRef, List<String>> warnings;

    private Waypoints(WaypointNames names, Map<ObjectRef, List<String>> warnings) {
        this.names = names;
        this.warnings = warnings;
    }

    /** Resolves the model's waypoints; problems are added to {@code warnings} by object. */
    public static Waypoints of(MeshModel model, WaypointNames names, Map<ObjectRef, List<String>> warnings) {
        Waypoints w = new Waypoints(names, warnings);
        MeshConfig mesh = model.mesh();
        model.all(Namespace.class).forEach(n -> w.namespaceLabels.put(n.ref().name(), n.labels()));
        List<Pod> pods = model.all(Pod.class);
        for (Gateway g : model.all(Gateway.class)) {
            if (!names.declaresWaypoint(g)) {
                continue;
            }
            String key = g.ref().qualifiedName();
            Optional<Pod> pod = pods.stream().filter(p -> w.runs(g, p) && p.ready() && !p.ips().isEmpty())
                    .min(Comparator.comparing(p -> p.ref().name()));
            w.gateways.put(key, g);
            w.declared.put(key, pod.map(p -> GatewayAddress.newBuilder().setAddress(Translator.bytes(p.ips()
                    .getFirst())).setHbonePort(WaypointNames.MESH_LISTENER.port()).setIdentity(SpiffeId
                            .forServiceAccount(mesh.trustDomain(), p.ref().namespace(), p.serviceAccount())
                            .toString())
                    .build()));
            if (pod.isEmpty()) {
                w.warn(g.ref(), "no ready pod labelled " + WaypointNames.GATEWAY_NAME_LABEL + ": " + g.ref().name()
                        + " runs this waypoint in namespace " + g.ref().namespace()
                        + "; the traffic that uses it goes direct until one runs");
            }
        }
        return w;
    }

    /** The waypoint of service {@code s}, if it uses one that serves services. */
    Optional<GatewayAddress> forService(ServiceDef s) {
        return gatewayOf(s).flatMap(declared::get);
    }

    /** The "ns/name" of the waypoint Gateway that serves service {@code s}, if it uses one. */
    public Optional<String> gatewayOf(ServiceDef s) {
        return resolve(s.ref(), s.labels()).filter(g -> names.waypointFor(gateways.get(g)).services());
    }

    /** The waypoint of pod {@code p}, if it uses one that serves workloads (never for a waypoint's pod). */
    Optional<GatewayAddress> forPod(Pod p) {
        if (gateways.values().stream().anyMatch(g -> runs(g, p))) {
            return Optional.empty();
        }
        return resolve(p.ref(), p.labels()).filter(g -> names.waypointFor(gateways.get(g)).workloads())
                .flatMap(declared::get);
    }

    /** The "ns/name" of the declared waypoint the object's (or else its namespace's) labels name. */
    private Optional<String> resolve(ObjectRef ref, Map<String, String> labels) {
        Map<String, String> from = labels;
        String name = names.useWaypoint(labels);
        if (name == null) {
            from = namespaceLabels.getOrDefault(ref.namespace(), Map.of());
            name = names.useWaypoint(from);
        }
        if (name == null || name.equals("none")) {
            return Optional.empty();
        }
        String ns = names.useWaypointNamespace(from);
        String key = (ns == null ? ref.namespace() : ns) + "/" + name;
        if (!declared.containsKey(key)) {
            warn(ref, "use-waypoint names " + key + ", which no Gateway of a waypoint class with the listener "
                    + "{name: mesh, port: 15008, protocol: HBONE} declares; its traffic goes direct");
            return Optional.empty();
        }
        return Optional.of(key);
    }

    private boolean runs(Gateway g, Pod p) {
        return p.ref().namespace().equals(g.ref().namespace())
                && g.ref().name().equals(p.labels().get(WaypointNames.GATEWAY_NAME_LABEL));
    }

    private void warn(ObjectRef ref, String warning) {
        List<String> list = warnings.computeIfAbsent(ref, k -> new ArrayList<>());
        if (!list.contains(warning)) {
            list.add(warning);
        }
    }
}
