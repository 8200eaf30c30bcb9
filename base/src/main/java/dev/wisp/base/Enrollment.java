package dev.wisp.base;

import static java.util.Objects.requireNonNull;

import java.util.Map;

/**
 * Which pods the mesh claims (pure), decided alike by the control plane (which pods are workloads)
 * and by the CNI plugin (which pods it lets start without waiting for the agent). A pod's own label
 * decides first, then its namespace's: {@code <label>=enabled} enrolls, {@code <label>=none} (or
 * {@code disabled}) opts a pod, or a whole namespace, out. With
 * {@code honorIstioLabels}, Istio ambient's {@code istio.io/dataplane-mode=ambient} enrolls too
 * and {@code istio.io/dataplane-mode=none} on a pod opts it out; it is off by default so that Wisp
 * and an Istio on the same cluster never claim the same pods.
 *
 * @param label the Wisp label key ({@code wisp.dev/mesh} by default)
 */
public record Enrollment(String label, boolean honorIstioLabels) {
    public static final String DEFAULT_LABEL = "wisp.dev/mesh";
    public static final String ISTIO_MODE = "istio.io/dataplane-mode";

    public Enrollment {
        requireNonNull(label, "label");
        if (label.isBlank()) {
            throw new IllegalArgumentException("the enrollment label must not be empty");
        }
    }

    /** Whether a pod with these labels, in a namespace with these labels, is in the mesh. */
    public boolean enrolled(Map<String, String> podLabels, Map<String, String> namespaceLabels) {
        Boolean pod = decision(podLabels);
        if (pod != null) {
            return pod;
        }
        return Boolean.TRUE.equals(decision(namespaceLabels));
    }

    /** TRUE enrolled, FALSE opted out, null: these labels do not say. */
    private Boolean decision(Map<String, String> labels) {
        String wisp = labels.get(label);
        if ("enabled".equals(wisp)) {
            return true;
        }
        if ("none".equals(wisp) || "disabled".equals(wisp)) {
            return false;
        }
        if (honorIstioLabels) {
            String istio = labels.get(ISTIO_MODE);
            if ("ambient".equals(istio)) {
                return true;
            }
            if ("none".equals(istio)) {
                return false;
            }
        }
        return null;
    }
}
