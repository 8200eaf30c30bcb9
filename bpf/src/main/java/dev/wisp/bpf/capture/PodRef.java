package dev.wisp.bpf.capture;

import static java.util.Objects.requireNonNull;

import java.net.InetAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A pod as capture sees it: a stable id (names its pins), its cgroup v2 directory (outbound capture,
 * bind protection, flow events), its network namespace (inbound capture; {@code null} for none) and
 * its addresses (inbound capture applies to connections addressed to these).
 */
public record PodRef(String id, Path cgroup, Path netns, List<InetAddress> ips) {
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9_.-]{1,128}");

    public PodRef {
        requireNonNull(id, "id");
        requireNonNull(cgroup, "cgroup");
        ips = List.copyOf(requireNonNull(ips, "ips"));
        if (!ID.matcher(id).matches() || id.startsWith(".")) {
            throw new IllegalArgumentException("pod id must be 1-128 of [A-Za-z0-9_.-] and not start with '.': " + id);
        }
    }
}
