package dev.wisp.cli;

import dev.wisp.base.Enrollment;
import picocli.CommandLine.Option;

/**
 * {@code --enroll-label} and {@code --honor-istio-labels}: which pods are in the mesh ({@link
 * Enrollment}), read from Kubernetes labels. The control plane and the CNI plugin ({@code wisp
 * control-plane}, {@code wisp cni install}) must decide alike, so both take these options from here.
 */
public final class EnrollmentOptions {
    @Option(names = "--enroll-label", paramLabel = "KEY", defaultValue = Enrollment.DEFAULT_LABEL, description = "With --kubernetes: pods, or namespaces, labelled KEY=enabled are in the mesh; KEY=none (or disabled) opts a pod or namespace out (default: ${DEFAULT-VALUE}).")
    String label;

    @Option(names = "--honor-istio-labels", description = "With --kubernetes: istio.io/dataplane-mode=ambient enrolls too (none opts out). Off by default, so that Wisp and Istio never claim the same pods.")
    boolean honorIstioLabels;

    public Enrollment enrollment() {
        return new Enrollment(label, honorIstioLabels);
    }
}
