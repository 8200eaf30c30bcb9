package dev.wisp.cli;

import dev.wisp.node.capture.PodDiscovery;
import java.nio.file.Path;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * Where the host keeps what a pod is made of: its cgroup v2 root and the directories in which the
 * container runtime pins pods' network namespaces. A picocli mixin for {@code wisp node} (with
 * {@code --discover-pods}) and {@code wisp cni install} (for the plugin), which look for pods the same way.
 */
final class PodHostOptions {
    @Option(names = "--cgroup-root", paramLabel = "DIR", description = "The host's cgroup v2 root, under which the kubelet lays out pods' cgroups (default: ${DEFAULT-VALUE}).")
    Path cgroupRoot = PodDiscovery.DEFAULT_CGROUP_ROOT;

    @Option(names = "--netns-dir", paramLabel = "DIR", description = "Where the container runtime pins pods' network namespaces (repeatable; default: /var/run/netns and /run/netns).")
    List<Path> netnsDirs;

    /** The {@code --netns-dir} directories, or the runtimes' usual ones when none was given. */
    List<Path> netnsDirsOrDefault() {
        return netnsDirs != null ? netnsDirs : PodDiscovery.DEFAULT_NETNS_DIRS;
    }
}
