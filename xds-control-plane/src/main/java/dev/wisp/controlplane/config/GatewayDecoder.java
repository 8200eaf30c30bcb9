package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.Gateway;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.WaypointNames;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Decodes {@code gateway.networking.k8s.io/v1 Gateway}. Gateways of other classes are kept as they
 * are (the mesh ignores them); one of a waypoint class must carry the mesh HBONE listener, since
 * without it Istio does not treat it as a waypoint either and the operator's intent would be lost
 * silently. Also checks the labels that select a waypoint ({@link #waypointLabels}).
 */
final class GatewayDecoder {
    private GatewayDecoder() {}

    static Gateway gateway(Fields f, YNode doc, ObjectRef ref) {
        f.allowOnly(doc, "", "apiVersion", "kind", "metadata", "spec", "status");
        YNode spec = f.child(doc, "spec");
        f.allowOnly(spec, "spec", "gatewayClassName", "listeners", "addresses", "infrastructure");
        String className = f.string(spec, "gatewayClassName", "spec.gatewayClassName");
        if (className == null) {
            f.error(spec == null ? doc : spec, "spec.gatewayClassName", "required (" + WaypointNames.ISTIO_CLASS
                    + " or " + WaypointNames.WISP_CLASS + " for a waypoint)");
            className = "";
        }
        List<Gateway.Listener> listeners = new ArrayList<>();
        f.each(spec, "listeners", "spec.listeners", (l, path) -> {
            String name = f.string(l, "name", path + ".name");
            String portText = f.string(l, "port", path + ".port");
            String protocol = f.string(l, "protocol", path + ".protocol");
            if (name == null || portText == null || protocol == null) {
                f.error(l, path, "needs name, port and protocol");
                return;
            }
            int port = f.port(f.child(l, "port"), portText, path + ".port");
            listeners.add(new Gateway.Listener(name, port, protocol));
        });
        List<InetAddress> addresses = new ArrayList<>();
        f.each(spec, "addresses", "spec.addresses", (a, path) -> {
            f.allowOnly(a, path, "type", "value");
            String type = f.string(a, "type", path + ".type");
            String value = f.string(a, "value", path + ".value");
            if (type != null && !type.equals("IPAddress")) {
                f.error(f.child(a, "type"), path + ".type", "'" + type + "' is not supported; use IPAddress");
            } else if (value == null) {
                f.error(a, path + ".value", "required");
            } else {
                InetAddress ip = ConfigDecoder.ip(f, a, value, path + ".value");
                if (ip != null) {
                    addresses.add(ip);
                }
            }
        });
        Map<String, String> labels = ConfigDecoder.labels(f, doc);
        Gateway g = new Gateway(ref, className, List.copyOf(listeners), List.copyOf(addresses), labels);
        boolean waypointClass = className.equals(WaypointNames.ISTIO_CLASS)
                || className.equals(WaypointNames.WISP_CLASS);
        if (waypointClass && !listeners.contains(WaypointNames.MESH_LISTENER)) {
            f.error(spec, "spec.listeners", "a waypoint needs the listener {name: mesh, port: 15008, protocol: HBONE}");
        }
        for (String key : List.of(WaypointNames.ISTIO_FOR, WaypointNames.WISP_FOR)) {
            String v = labels.get(key);
            if (v != null && !WaypointNames.FOR_VALUES.contains(v)) {
                f.error(f.child(f.child(doc, "metadata"), "labels"), "metadata.labels." + key, "'" + v
                        + "' is not one of " + String.join(", ", WaypointNames.FOR_VALUES));
            }
        }
        return g;
    }

    /**
     * Refuses a {@code use-waypoint} label (on any object: Namespace, Service, Pod) that cannot name a
     * Gateway, and a {@code use-waypoint-namespace} that cannot name a namespace, so that a typo is an
     * error at the label rather than traffic that silently skips its waypoint.
     */
    static void waypointLabels(Fields f, YNode doc, Map<String, String> labels) {
        YNode at = f.child(f.child(doc, "metadata"), "labels");
        for (String key : List.of(WaypointNames.ISTIO_USE, WaypointNames.WISP_USE)) {
            String v = labels.get(key);
            if (v != null && !ConfigDecoder.DNS_SUBDOMAIN.matcher(v).matches()) {
                f.error(at, "metadata.labels." + key, "'" + v + "' is not a Gateway name (lower-case letters, "
                        + "digits, '-' and '.'), nor none");
            }
        }
        for (String key : List.of(WaypointNames.ISTIO_USE_NAMESPACE, WaypointNames.WISP_USE_NAMESPACE)) {
            String v = labels.get(key);
            if (v != null && !ConfigDecoder.DNS_LABEL.matcher(v).matches()) {
                f.error(at, "metadata.labels." + key, "'" + v + "' is not a namespace name");
            }
        }
    }
}
