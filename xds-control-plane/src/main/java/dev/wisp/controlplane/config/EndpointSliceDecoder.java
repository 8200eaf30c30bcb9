package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.EndpointSlice;
import dev.wisp.controlplane.model.ObjectRef;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * Decodes {@code discovery.k8s.io/v1 EndpointSlice}: the Service it belongs to (its
 * {@code kubernetes.io/service-name} label), its IP endpoints with readiness and target pod, and
 * its ports. Fields the mesh does not read (hints, zones, serving/terminating) are ignored, as for
 * Service and Node, since the controller writes them.
 */
final class EndpointSliceDecoder {
    private EndpointSliceDecoder() {}

    static EndpointSlice endpointSlice(Fields f, YNode doc, ObjectRef ref) {
        String service = ConfigDecoder.labels(f, doc).get(EndpointSlice.SERVICE_LABEL);
        if (service == null || service.isEmpty()) {
            f.error(f.child(doc, "metadata"), "metadata.labels." + EndpointSlice.SERVICE_LABEL,
                    "required: the Service this slice belongs to");
            service = "";
        }
        String type = f.string(doc, "addressType", "addressType");
        if (type != null && !type.equals("IPv4") && !type.equals("IPv6")) {
            f.error(f.child(doc, "addressType"), "addressType", "'" + type + "' is not one of IPv4, IPv6");
            return new EndpointSlice(ref, service, List.of(), List.of());
        }
        List<EndpointSlice.Endpoint> endpoints = new ArrayList<>();
        f.each(doc, "endpoints", "endpoints", (e, path) -> {
            List<InetAddress> addresses = new ArrayList<>();
            for (String a : f.strings(e, "addresses", path + ".addresses")) {
                InetAddress ip = ConfigDecoder.ip(f, f.child(e, "addresses"), a, path + ".addresses");
                if (ip != null) {
                    addresses.add(ip);
                }
            }
            if (addresses.isEmpty()) {
                f.error(e, path + ".addresses", "required: at least one address");
            }
            String ready = f.string(f.child(e, "conditions"), "ready", path + ".conditions.ready");
            YNode target = f.child(e, "targetRef");
            String pod = "Pod".equals(f.string(target, "kind", path + ".targetRef.kind"))
                    ? f.string(target, "name", path + ".targetRef.name")
                    : null;
            endpoints.add(new EndpointSlice.Endpoint(List.copyOf(addresses), !"false".equals(ready),
                    pod == null ? "" : pod));
        });
        List<EndpointSlice.SlicePort> ports = new ArrayList<>();
        f.each(doc, "ports", "ports", (p, path) -> {
            String number = f.string(p, "port", path + ".port");
            String name = f.string(p, "name", path + ".name");
            // No port number: the slice means "all ports"; the service's own targets then stand.
            if (number != null) {
                ports.add(new EndpointSlice.SlicePort(name == null ? "" : name, f.port(f.child(p, "port"), number,
                        path + ".port")));
            }
        });
        return new EndpointSlice(ref, service, List.copyOf(endpoints), List.copyOf(ports));
    }
}
