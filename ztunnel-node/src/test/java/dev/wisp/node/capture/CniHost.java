package dev.wisp.node.capture;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A node's host directories as the CNI plugin and its installer use them, laid out (empty) in a
 * test's temporary directory: the CNI plugin and configuration directories, the agent's pods
 * directory, the runtime's network-namespace directory and the cgroup v2 root.
 */
record CniHost(Path bin, Path conf, Path pods, Path netnsDir, Path cgroupRoot) {
    static CniHost in(Path dir) throws IOException {
        return new CniHost(made(dir, "opt/cni/bin"), made(dir, "etc/cni/net.d"), made(dir, "run/wisp/pods"),
                made(dir, "var/run/netns"), made(dir, "sys/fs/cgroup"));
    }

    private static Path made(Path dir, String path) throws IOException {
        return Files.createDirectories(dir.resolve(path));
    }
}
