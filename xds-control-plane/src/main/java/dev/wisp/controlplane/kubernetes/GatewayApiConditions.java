package dev.wisp.controlplane.kubernetes;

import static dev.wisp.controlplane.kubernetes.GatewayApiStatus.list;
import static dev.wisp.controlplane.kubernetes.GatewayApiStatus.map;

import dev.wisp.controlplane.model.ServiceDef;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The Gateway API status one reading of the cluster calls for (pure: objects and the reading in,
 * status maps without {@code lastTransitionTime} out; {@link GatewayApiStatus} writes them).
 *
 * <ul>
 * <li>A refused object (the decoder's error, the same one its Event carries) is
 * {@code Accepted=False}: reason {@code Invalid} on a Gateway, {@code UnsupportedValue} on a route.
 * <li>A route's Service parent that is not a Service of the mesh (absent, or in a namespace without
 * enrolled pods, whose Services are not read) is {@code Accepted=False/NoMatchingParent}.
 * <li>{@code ResolvedRefs} of a route parent: {@code False/BackendNotFound} naming the first
 * {@code backendRefs} entry that is not a Service of the mesh, {@code False/InvalidKind} for one of
 * another kind, else {@code True/ResolvedRefs}.
 * </ul>
 */
final class GatewayApiConditions {
    private static final String GATEWAY_GROUP = "gateway.networking.k8s.io";
    private final Set<String> services;
    private final List<ClusterObjects.Refusal> refusals;

    GatewayApiConditions(ClusterObjects.Reading reading) {
        this.services = reading.decoded().stream().flatMap(d -> d.objects().stream())
                .filter(ServiceDef.class::isInstance)
                .map(o -> o.ref().namespace() + "/" + o.ref().name())
                .collect(Collectors.toSet());
        this.refusals = reading.refusals();
    }

    /** The status of a Gateway of a class this control plane serves. */
    Map<String, Object> gateway(GenericKubernetesResource g) {
        Long generation = g.getMetadata().getGeneration();
        String refused = refused(g);
        boolean ok = refused == null;
        List<Object> conditions = List.of(
                condition("Accepted", ok, ok ? "Accepted" : "Invalid",
                        ok ? "Wisp serves this Gateway" : "refused: " + refused, generation),
                condition("Programmed", ok, ok ? "Programmed" : "Invalid", ok
                        ? "in the configuration Wisp's control plane serves"
                        : "not programmed: refused (see the Accepted condition)", generation));
        List<Object> listeners = new ArrayList<>();
        for (Object l : list(map(g.getAdditionalProperties().get("spec")).get("listeners"))) {
            Object name = map(l).get("name");
            if (!(name instanceof String)) {
                continue;
            }
            Map<String, Object> listener = new LinkedHashMap<>();
            listener.put("name", name);
            listener.put("supportedKinds", GatewayApiStatus.ROUTE_KINDS.stream().sorted()
                    .map(k -> Map.of("group", GATEWAY_GROUP, "kind", k)).toList());
            // Mesh routes attach to Services (GAMMA), never to a waypoint's listener.
            listener.put("attachedRoutes", 0);
            String reason = ok ? null : "Invalid";
            listener.put("conditions", List.of(
                    condition("Accepted", ok, ok ? "Accepted" : reason, ok ? "accepted" : "the Gateway is refused",
                            generation),
                    condition("ResolvedRefs", ok, ok ? "ResolvedRefs" : reason,
                            ok ? "no references to resolve" : "the Gateway is refused", generation),
                    condition("Programmed", ok, ok ? "Programmed" : reason,
                            ok ? "programmed" : "the Gateway is refused", generation)));
            listeners.add(listener);
        }
        Map<String, Object> status = new LinkedHashMap<>();
        status.put("conditions", conditions);
        status.put("listeners", listeners);
        return status;
    }

    /** The status of an HTTPRoute or GRPCRoute: {@code others} (other controllers' parents) and one entry per Service parent. */
    Map<String, Object> route(GenericKubernetesResource r, List<Object> others) {
        Long generation = r.getMetadata().getGeneration();
        Map<String, Object> spec = map(r.getAdditionalProperties().get("spec"));
        String namespace = r.getMetadata().getNamespace();
        String refused = refused(r);
        List<Object> parents = new ArrayList<>(others);
        for (Object p : list(spec.get("parentRefs"))) {
            Map<String, Object> ref = map(p);
            if (!isService(ref.get("group"), ref.getOrDefault("kind", "Gateway"))
                    || !(ref.get("name") instanceof String)) {
                continue; // a Gateway parent is another controller's (Wisp runs no ingress gateway)
            }
            String service = (ref.get("namespace") instanceof String ns ? ns : namespace) + "/" + ref.get("name");
            Map<String, Object> accepted;
            if (refused != null) {
                accepted = condition("Accepted", false, "UnsupportedValue", "refused: " + refused, generation);
            } else if (!services.contains(service)) {
                accepted = condition("Accepted", false, "NoMatchingParent", "Service " + service
                        + " is not in the mesh (absent, or no enrolled pod in its namespace)", generation);
            } else {
                accepted = condition("Accepted", true, "Accepted", "Wisp routes this Service's traffic", generation);
            }
            Map<String, Object> parent = new LinkedHashMap<>();
            parent.put("parentRef", new LinkedHashMap<>(ref));
            parent.put("controllerName", GatewayApiStatus.CONTROLLER);
            parent.put("conditions", List.of(accepted, resolvedRefs(spec, namespace, generation)));
            parents.add(parent);
        }
        return Map.of("parents", parents);
    }

    private Map<String, Object> resolvedRefs(Map<String, Object> spec, String namespace, Long generation) {
        List<Object> rules = list(spec.get("rules"));
        for (int i = 0; i < rules.size(); i++) {
            List<Object> backends = list(map(rules.get(i)).get("backendRefs"));
            for (int j = 0; j < backends.size(); j++) {
                Map<String, Object> b = map(backends.get(j));
                String path = "spec.rules[" + i + "].backendRefs[" + j + "]";
                Object kind = b.getOrDefault("kind", "Service");
                if (!isService(b.getOrDefault("group", ""), kind)) {
                    return condition("ResolvedRefs", false, "InvalidKind", path + ": " + b.getOrDefault("group", "")
                            + "/" + kind + " is not a Service", generation);
                }
                String service = (b.get("namespace") instanceof String ns ? ns : namespace) + "/" + b.get("name");
                if (!services.contains(service)) {
                    return condition("ResolvedRefs", false, "BackendNotFound", path + ": Service " + service
                            + " is not in the mesh (absent, or no enrolled pod in its namespace)", generation);
                }
            }
        }
        return condition("ResolvedRefs", true, "ResolvedRefs", "every backend is a Service of the mesh", generation);
    }

    private static boolean isService(Object group, Object kind) {
        return "Service".equals(kind) && (group == null || "".equals(group) || "core".equals(group));
    }

    /** The refusal messages of {@code o} in this reading, or null when it was not refused. */
    private String refused(HasMetadata o) {
        String messages = refusals.stream().filter(x -> same(x.object(), o)).map(ClusterObjects.Refusal::message)
                .collect(Collectors.joining("; "));
        return messages.isEmpty() ? null : messages;
    }

    private static boolean same(HasMetadata a, HasMetadata b) {
        return a.getKind().equals(b.getKind()) && a.getMetadata().getName().equals(b.getMetadata().getName())
                && java.util.Objects.equals(a.getMetadata().getNamespace(), b.getMetadata().getNamespace());
    }

    private static Map<String, Object> condition(String type, boolean ok, String reason, String message,
            Long generation) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("type", type);
        c.put("status", ok ? "True" : "False");
        c.put("reason", reason);
        c.put("message", message);
        if (generation != null) {
            c.put("observedGeneration", generation);
        }
        return c;
    }
}
