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
 * selector matches. A named {@code targetPort} the slice does not give resolves to each pod's
 * container port of that name. Pure; built once per model.
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
                    ? targets(service, List.of(), pod)
                    : Optional.empty();
        }
        for (EndpointSlice slice : own) {
            for (EndpointSlice.Endpoint e : slice.endpoints()) {
                boolean isPod = e.pod().isEmpty()
                        ? e.addresses().stream().anyMatch(pod.ips()::contains)
                        : e.pod().equals(pod.ref().name());
                if (e.ready() && isPod) {
                    return targets(service, slice.ports(), pod);
                }
            }
        }
        return Optional.empty();
    }

    /**
     * The service's ports with each target taken from the slice's port of the same name, else
     * from the port itself: its number, or the pod's container port of its target's name. A port
     * whose named target the pod does not declare is not served by this pod (as Kubernetes'
     * endpoints controller leaves it out); a pod serving none of the ports serves nothing.
     */
    private static Optional<List<ServiceDef.ServicePort>> targets(ServiceDef service,
            List<EndpointSlice.SlicePort> slicePorts, Pod pod) {
        List<ServiceDef.ServicePort> out = new ArrayList<>();
        for (ServiceDef.ServicePort p : service.ports()) {
            java.util.OptionalInt target = slicePorts.stream().filter(sp -> sp.name().equals(p.name()))
                    .mapToInt(EndpointSlice.SlicePort::port).findFirst();
            if (target.isEmpty()) {
                target = p.targetOn(pod);
            }
            target.ifPresent(t -> out.add(new ServiceDef.ServicePort(p.name(), p.port(), t)));
        }
        return out.isEmpty() && !service.ports().isEmpty() ? Optional.empty() : Optional.of(List.copyOf(out));
    }

    /**
     * A Service port whose named {@code targetPort} no pod it selects declares (and no slice of it
     * gives): refused, since it could never carry traffic.
     *
     * @param index the port's index in {@code spec.ports}
     */
    public record UnresolvedTarget(ObjectRef service, int index, String targetPortName) {
        public String field() {
            return "spec.ports[" + index + "].targetPort";
        }

        public String message() {
            return "'" + targetPortName + "' is a named port that no pod this Service selects declares "
                    + "(spec.containers[].ports[].name); name the container port so, or give the number";
        }
    }

    /** The named targets of {@code objects}' Services that nothing among them resolves. */
    public static List<UnresolvedTarget> unresolved(List<MeshObject> objects) {
        List<UnresolvedTarget> out = new ArrayList<>();
        for (MeshObject o : objects) {
            if (!(o instanceof ServiceDef s)) {
                continue;
            }
            for (int i = 0; i < s.ports().size(); i++) {
                ServiceDef.ServicePort p = s.ports().get(i);
                if (p.targetPortName() == null) {
                    continue;
                }
                boolean resolved = objects.stream().anyMatch(x -> switch (x) {
                    case Pod pod -> pod.ref().namespace().equals(s.ref().namespace()) && !s.selector().isEmpty()
                            && Selectors.selects(s.selector(), pod.labels())
                            && pod.namedPorts().containsKey(p.targetPortName());
                    case EndpointSlice slice -> slice.ref().namespace().equals(s.ref().namespace())
                            && slice.serviceName().equals(s.ref().name())
                            && slice.ports().stream().anyMatch(sp -> sp.name().equals(p.name()));
                    default -> false;
                });
                if (!resolved) {
                    out.add(new UnresolvedTarget(s.ref(), i, p.targetPortName()));
                }
            }
        }
        return out;
    }
}
