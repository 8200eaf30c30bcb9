package dev.wisp.controlplane.model;

import java.util.List;
import java.util.Map;

/**
 * The names that declare and select a waypoint: Wisp's own always, Istio's ({@code istio-waypoint},
 * {@code istio.io/use-waypoint} …) when honoured. Local mode honours both; on a cluster beside an
 * Istio that owns its names, a setting leaves Istio's alone.
 *
 * @param honourIstio whether Istio's class name and labels count
 */
public record WaypointNames(boolean honourIstio) {
    public static final WaypointNames ISTIO_AND_WISP = new WaypointNames(true);
    public static final WaypointNames WISP_ONLY = new WaypointNames(false);

    public static final String ISTIO_CLASS = "istio-waypoint";
    public static final String WISP_CLASS = "wisp-waypoint";
    public static final String ISTIO_USE = "istio.io/use-waypoint";
    public static final String WISP_USE = "wisp.dev/use-waypoint";
    public static final String ISTIO_USE_NAMESPACE = "istio.io/use-waypoint-namespace";
    public static final String WISP_USE_NAMESPACE = "wisp.dev/use-waypoint-namespace";
    public static final String ISTIO_FOR = "istio.io/waypoint-for";
    public static final String WISP_FOR = "wisp.dev/waypoint-for";
    /** The label Istio (and Wisp) put on a waypoint's pods: the Gateway's name. */
    public static final String GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
    /** The listener that makes a Gateway a waypoint: {@code {name: mesh, port: 15008, protocol: HBONE}}. */
    public static final Gateway.Listener MESH_LISTENER = new Gateway.Listener("mesh", 15008, "HBONE");

    /** What traffic a waypoint takes ({@code istio.io/waypoint-for}). */
    public enum For {
        SERVICE, WORKLOAD, ALL, NONE;

        public boolean services() {
            return this == SERVICE || this == ALL;
        }

        public boolean workloads() {
            return this == WORKLOAD || this == ALL;
        }
    }

    /** Whether {@code g} declares a waypoint: a waypoint class and the mesh HBONE listener. */
    public boolean declaresWaypoint(Gateway g) {
        boolean cls = g.className().equals(WISP_CLASS) || (honourIstio && g.className().equals(ISTIO_CLASS));
        return cls && g.listeners().contains(MESH_LISTENER);
    }

    /** The Gateway's {@code waypoint-for} (Wisp's label first); {@code SERVICE} when absent. */
    public For waypointFor(Gateway g) {
        String v = label(g.labels(), WISP_FOR, ISTIO_FOR);
        // The decoder refuses other values; a source that did not validate gets the default.
        return v == null || !FOR_VALUES.contains(v) ? For.SERVICE : For.valueOf(v.toUpperCase(java.util.Locale.ROOT));
    }

    /** The waypoint named on an object's labels, or null; {@code none} is returned as is. */
    public String useWaypoint(Map<String, String> labels) {
        return label(labels, WISP_USE, ISTIO_USE);
    }

    /** The namespace of the waypoint named on an object's labels, or null (then the object's own). */
    public String useWaypointNamespace(Map<String, String> labels) {
        return label(labels, WISP_USE_NAMESPACE, ISTIO_USE_NAMESPACE);
    }

    /** The value valid {@code waypoint-for} labels take. */
    public static final List<String> FOR_VALUES = List.of("service", "workload", "all", "none");

    private String label(Map<String, String> labels, String wisp, String istio) {
        String v = labels.get(wisp);
        if (v == null && honourIstio) {
            v = labels.get(istio);
        }
        return v;
    }
}
