package dev.wisp.controlplane.model;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Which pods serve a Service, in one place for the workload translation and the route engine:
 * a Service with EndpointSlices is served by the ready endpoints its slices list (matched to a pod
 * by the target pod's name or by address), with each named port's target from the slice; a
 * Service without slices (local mode, or before the controller wrote them) by the pods its
 * selector matches. Pure; built once per model.
 */
public final class ServiceEndpoints {
    /** namespace/service → its slices. */
    private final Map<String, List<EndpointSlice>> slices = new HashMap<>();

    private ServiceEndpoints(List<EndpointSlice> all) {
        all.forEach(s -> slices.computeIfAbsent(s.ref().namespace() + "/" + s.serviceName(), k -> new ArrayList<>())
                .add(s));
    }

    public static ServiceEndpoints of(MeshModel model) {
        return new ServiceEndpoints(model.all(EndpointSlice.class));
    }

    /**
     * The ports by which {@code pod} serves {@code service} (service port → target port), or empty
     * when it does not serve it.
     */
    public Optional<List<ServiceDef.ServicePort>> ports(ServiceDef service, Pod pod) {
        if (!service.ref().namespace().equals(pod.ref().namespace())) {
            return Optional.empty();
        }
        List<EndpointSlice> own = slices.get(service.ref().namespace() + "/" + service.ref().name());
        if (own == null) {
            return Selectors.selects(service.selector(), pod.labels())
                    ? Optional.of(service.ports())
                    : Optional.empty();
        }
        for (EndpointSlice slice : own) {
            for (EndpointSlice.Endpoint e : slice.endpoints()) {
                boolean isPod = e.pod().isEmpty()
                        ? e.addresses().stream().anyMatch(pod.ips()::contains)
                        : e.pod().equals(pod.ref().name());
                if (e.ready() && isPod) {
                    return Optional.of(targets(service, slice));
                }
            }
        }
        return Optional.empty();
    }

    /** The service's ports with each target taken from the slice's port of the same name. */
    private static List<ServiceDef.ServicePort> targets(ServiceDef service, EndpointSlice slice) {
        List<ServiceDef.ServicePort> out = new ArrayList<>();
        for (ServiceDef.ServicePort p : service.ports()) {
            int target = slice.ports().stream().filter(sp -> sp.name().equals(p.name())).mapToInt(
                    EndpointSlice.SlicePort::port).findFirst().orElse(p.targetPort());
            out.add(new ServiceDef.ServicePort(p.name(), p.port(), target));
        }
        return out;
    }
}
