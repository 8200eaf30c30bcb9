package dev.wisp.controlplane.translate;

import dev.wisp.api.workload.v1.MtlsMode;
import dev.wisp.controlplane.model.MeshConfig;
import dev.wisp.controlplane.model.PeerAuthentication;
import dev.wisp.controlplane.model.Pod;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Resolves PeerAuthentication for one workload with Istio's precedence: a policy selecting the
 * workload, then its namespace's policy without selector, then the root namespace's, then the mesh
 * default; {@code UNSET} at one level defers to the next. When two policies compete at one level
 * the first by name wins, so that the result does not depend on file order.
 */
final class MtlsResolver {
    private MtlsResolver() {}

    record Resolved(MtlsMode mode, Map<Integer, MtlsMode> ports) {}

    static Resolved resolve(Pod pod, MeshConfig mesh, List<PeerAuthentication> policies) {
        PeerAuthentication workload = null;
        PeerAuthentication namespace = null;
        PeerAuthentication root = null;
        for (PeerAuthentication p : policies) {
            String ns = p.ref().namespace();
            if (p.selector() != null) {
                if (workload == null && ns.equals(pod.ref().namespace())
                        && Translator.selects(p.selector(), pod.labels())) {
                    workload = p;
                }
            } else if (ns.equals(pod.ref().namespace()) && namespace == null) {
                namespace = p;
            } else if (ns.equals(mesh.rootNamespace()) && root == null) {
                root = p;
            }
        }
        dev.wisp.controlplane.model.MtlsMode mode = mesh.defaultMtls();
        for (PeerAuthentication p : new PeerAuthentication[]{root, namespace, workload}) {
            if (p != null && p.mode() != dev.wisp.controlplane.model.MtlsMode.UNSET) {
                mode = p.mode();
            }
        }
        Map<Integer, MtlsMode> ports = new TreeMap<>();
        if (workload != null) {
            for (var e : workload.portLevel().entrySet()) {
                var m = e.getValue() == dev.wisp.controlplane.model.MtlsMode.UNSET ? mode : e.getValue();
                ports.put(e.getKey(), Translator.mode(m));
            }
        }
        return new Resolved(Translator.mode(mode), ports);
    }
}
