package dev.wisp.node.workloadapi;

import static java.util.Objects.requireNonNull;

import java.util.Optional;

/**
 * Whether the process that connected to a pod's Workload API socket belongs to that pod: a pure
 * function of the caller's cgroup (from {@code /proc/<pid>/cgroup}, the pid from
 * {@code SO_PEERCRED}) and the pod's cgroup (from the pod plumbing). A process of the pod runs in
 * the pod's cgroup or in one below it (a container's); anything else — another pod, the node, a
 * process that exited before it was looked up — is refused. In the local mesh every pod shares one
 * filesystem, so the socket's path proves nothing: this check is the attestation.
 *
 * @param allowed whether the caller is a process of the pod
 * @param reason why, in the operator's words
 */
record CallerAttestation(boolean allowed, String reason) {

    /**
     * Decides on {@code procCgroup}, the content of the caller's {@code /proc/<pid>/cgroup} (empty
     * when it could not be read), against {@code podCgroup}, the pod's cgroup v2 path relative to
     * the hierarchy's root ({@code /wisp/c/pods/a}).
     */
    static CallerAttestation decide(int pid, Optional<String> procCgroup, String podCgroup) {
        requireNonNull(procCgroup, "procCgroup");
        String pod = trimmed(requireNonNull(podCgroup, "podCgroup"));
        if (procCgroup.isEmpty()) {
            return new CallerAttestation(false, "pid " + pid + " has no readable cgroup (it exited, or is in "
                    + "another pid namespace)");
        }
        Optional<String> caller = unifiedPath(procCgroup.get());
        if (caller.isEmpty()) {
            return new CallerAttestation(false, "pid " + pid + " has no cgroup v2 entry");
        }
        String c = trimmed(caller.get());
        if (pod.equals("/")) {
            return new CallerAttestation(false, "the pod's cgroup is the root cgroup: no caller can be told apart");
        }
        if (c.equals(pod) || c.startsWith(pod + "/")) {
            return new CallerAttestation(true, "pid " + pid + " in cgroup " + c + " is in the pod's cgroup " + pod);
        }
        return new CallerAttestation(false, "pid " + pid + " in cgroup " + c + " is not in the pod's cgroup " + pod);
    }

    /** The path of the {@code 0::} (cgroup v2) line of a {@code /proc/<pid>/cgroup} file. */
    static Optional<String> unifiedPath(String procCgroup) {
        for (String line : procCgroup.split("\n")) {
            if (line.startsWith("0::")) {
                String p = line.substring(3).strip();
                // "(deleted)" marks a cgroup removed while the process is still in it; such a path is no proof.
                return p.startsWith("/") && !p.contains(" ") ? Optional.of(p) : Optional.empty();
            }
        }
        return Optional.empty();
    }

    private static String trimmed(String path) {
        String p = path.strip();
        while (p.length() > 1 && p.endsWith("/")) {
            p = p.substring(0, p.length() - 1);
        }
        return p;
    }
}
