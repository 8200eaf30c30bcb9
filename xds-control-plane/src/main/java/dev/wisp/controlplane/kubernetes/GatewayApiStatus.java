package dev.wisp.controlplane.kubernetes;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.controlplane.model.WaypointNames;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes the Gateway API status of the objects this control plane is responsible for, so that
 * {@code kubectl get gateway,httproute -o yaml} says whether Wisp took them: on Gateways of a class
 * Wisp serves, {@code Accepted} and {@code Programmed} (and per listener {@code Accepted},
 * {@code ResolvedRefs}, {@code Programmed}); on HTTPRoutes and GRPCRoutes, one
 * {@code status.parents[]} entry per Service parent with {@code controllerName}
 * {@value #CONTROLLER} and {@code Accepted} and {@code ResolvedRefs} (the Gateway API defines no
 * route-level {@code Programmed}). Entries of other controllers are kept as they are.
 *
 * <p>Only a status that differs from the object's, apart from {@code lastTransitionTime} (kept
 * while a condition's status holds), is written: the write's own watch event makes a reading that
 * computes the same status and writes nothing, so there is no write loop. A failed write (conflict,
 * RBAC) is logged and retried at the next reading. Pure decisions live in {@link GatewayApiConditions};
 * this class reads objects and writes the {@code status} subresource, on the source's reading
 * thread only.
 */
final class GatewayApiStatus {
    private static final Logger log = LoggerFactory.getLogger(GatewayApiStatus.class);
    static final String CONTROLLER = "wisp.dev/control-plane";
    private static final ObjectMapper JSON = new ObjectMapper();
    private final KubernetesClient client;
    private final boolean honourIstio;

    GatewayApiStatus(KubernetesClient client, boolean honourIstio) {
        this.client = client;
        this.honourIstio = honourIstio;
    }

    /** Writes what changed for the Gateway API objects of {@code objects}, judged against {@code reading}. */
    void write(List<GenericKubernetesResource> objects, ClusterObjects.Reading reading) {
        GatewayApiConditions conditions = new GatewayApiConditions(reading);
        for (GenericKubernetesResource o : objects) {
            Map<String, Object> desired = switch (o.getKind()) {
                case "Gateway" -> ownsClass(o) ? conditions.gateway(o) : null;
                case "HTTPRoute", "GRPCRoute" -> route(o, conditions);
                default -> null;
            };
            if (desired != null) {
                Map<String, Object> current = normal(map(o.getAdditionalProperties().get("status")));
                Map<String, Object> merged = normal(keepTransitionTimes(desired, current));
                if (!merged.equals(current)) {
                    put(o, merged);
                }
            }
        }
    }

    /** {@code status} as JSON reads it back (numbers of one type), so equal statuses compare equal. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> normal(Map<String, Object> status) {
        try {
            return JSON.readValue(JSON.writeValueAsString(status), Map.class);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a status map is not JSON: " + e.getMessage(), e);
        }
    }

    /** Istio's waypoint class only when Istio's names are honoured: otherwise an Istio owns it. */
    private boolean ownsClass(GenericKubernetesResource gateway) {
        Object cls = map(gateway.getAdditionalProperties().get("spec")).get("gatewayClassName");
        return WaypointNames.WISP_CLASS.equals(cls) || (honourIstio && WaypointNames.ISTIO_CLASS.equals(cls));
    }

    /** The route's status, or null when it has no parent of ours now and had none before (nothing to say). */
    private static Map<String, Object> route(GenericKubernetesResource r, GatewayApiConditions conditions) {
        List<Object> others = parents(r);
        boolean hadOurs = others.size() < list(map(r.getAdditionalProperties().get("status")).get("parents")).size();
        Map<String, Object> desired = conditions.route(r, others);
        return list(desired.get("parents")).size() == others.size() && !hadOurs ? null : desired;
    }

    /** The route's {@code status.parents[]} entries of other controllers. */
    private static List<Object> parents(GenericKubernetesResource route) {
        List<Object> others = new ArrayList<>();
        for (Object p : list(map(route.getAdditionalProperties().get("status")).get("parents"))) {
            if (!CONTROLLER.equals(map(p).get("controllerName"))) {
                others.add(p);
            }
        }
        return others;
    }

    private void put(GenericKubernetesResource o, Map<String, Object> status) {
        GenericKubernetesResource copy = new GenericKubernetesResource();
        copy.setApiVersion(o.getApiVersion());
        copy.setKind(o.getKind());
        copy.setMetadata(o.getMetadata());
        copy.setAdditionalProperties(new LinkedHashMap<>(o.getAdditionalProperties()));
        copy.getAdditionalProperties().put("status", status);
        ResourceDefinitionContext kind = KubernetesConfigSource.GATEWAY_KINDS.stream()
                .filter(k -> k.getKind().equals(o.getKind())).findFirst().orElseThrow();
        try {
            client.genericKubernetesResources(kind).inNamespace(o.getMetadata().getNamespace()).resource(copy)
                    .updateStatus();
            log.debug("wrote the status of {} {}/{}", o.getKind(), o.getMetadata().getNamespace(),
                    o.getMetadata().getName());
        } catch (KubernetesClientException e) {
            log.warn("cannot write the status of {} {}/{}: {} (retried at the next change; may the control plane "
                    + "update {}/status?)", o.getKind(), o.getMetadata().getNamespace(), o.getMetadata().getName(),
                    e.getMessage(), kind.getPlural());
        }
    }

    /**
     * {@code desired} with each condition's {@code lastTransitionTime} taken from {@code current}
     * when the same condition (same place, type and status) is already there, so an unchanged
     * status compares equal and a condition's time says when its status last changed.
     */
    static Map<String, Object> keepTransitionTimes(Map<String, Object> desired, Map<String, Object> current) {
        Map<String, Object> out = new LinkedHashMap<>(desired);
        if (desired.containsKey("conditions")) {
            out.put("conditions", times(list(desired.get("conditions")), list(current.get("conditions"))));
        }
        if (desired.containsKey("listeners")) {
            out.put("listeners", entries(list(desired.get("listeners")), list(current.get("listeners")), "name"));
        }
        if (desired.containsKey("parents")) {
            out.put("parents", entries(list(desired.get("parents")), list(current.get("parents")), "parentRef"));
        }
        return out;
    }

    /** Entries (listeners, route parents) matched by {@code key} to the current ones, conditions' times kept. */
    private static List<Object> entries(List<Object> desired, List<Object> current, String key) {
        List<Object> out = new ArrayList<>();
        for (Object d : desired) {
            Map<String, Object> entry = new LinkedHashMap<>(map(d));
            if (entry.containsKey("controllerName") && !CONTROLLER.equals(entry.get("controllerName"))) {
                out.add(d); // another controller's entry, as it is
                continue;
            }
            Object match = current.stream().filter(c -> Objects.equals(map(c).get(key), entry.get(key))
                    && Objects.equals(map(c).get("controllerName"), entry.get("controllerName"))).findFirst()
                    .orElse(null);
            if (entry.containsKey("conditions")) {
                entry.put("conditions", times(list(entry.get("conditions")), list(map(match).get("conditions"))));
            }
            out.add(entry);
        }
        return out;
    }

    private static List<Object> times(List<Object> desired, List<Object> current) {
        String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        List<Object> out = new ArrayList<>();
        for (Object d : desired) {
            Map<String, Object> c = new LinkedHashMap<>(map(d));
            String time = current.stream().map(GatewayApiStatus::map)
                    .filter(x -> Objects.equals(x.get("type"), c.get("type"))
                            && Objects.equals(x.get("status"), c.get("status")))
                    .map(x -> x.get("lastTransitionTime")).filter(String.class::isInstance).map(String.class::cast)
                    .findFirst().orElse(now);
            c.put("lastTransitionTime", time);
            out.add(c);
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        return o instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o) {
        return o instanceof List<?> l ? (List<Object>) l : List.of();
    }

    /** The route kinds a Gateway listener of a waypoint takes. */
    static final Set<String> ROUTE_KINDS = Set.of("HTTPRoute", "GRPCRoute");
}
