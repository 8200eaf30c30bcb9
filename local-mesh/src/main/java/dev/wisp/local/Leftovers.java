package dev.wisp.local;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What Wisp left on the machine: network namespaces and root-namespace links named {@code wisp-*},
 * cgroups under {@code <cgroup2>/wisp} and the processes in them, pinned BPF objects under
 * {@code /sys/fs/bpf/wisp} and WireGuard UAPI sockets named {@code wisp-*}. The end-to-end suite asserts this is empty for its clusters when it
 * finishes.
 */
public final class Leftovers {
    private static final Path BPF_PINS = Path.of("/sys/fs/bpf/wisp");

    private Leftovers() {}

    /** What cluster {@code name} left behind; empty when it is gone. */
    public static List<String> scan(String cluster) {
        String ns = "network namespace wisp-" + cluster + "-";
        String link = "link wisp-" + cluster;
        Path cg = Cgroups.wispRoot().resolve(cluster);
        Path pins = BPF_PINS.resolve(cluster);
        String socket = "UAPI socket " + LocalCluster.UAPI_SOCKETS.resolve("wisp-" + cluster + "-");
        return scan().stream().filter(l -> l.startsWith(ns) || l.equals(link) || l.startsWith(link + "-") || under(
                l, cg) || under(l, pins) || l.startsWith(socket)).toList();
    }

    /** Whether the path a leftover line ends with is {@code root} or below it. */
    private static boolean under(String line, Path root) {
        int slash = line.indexOf('/');
        if (slash < 0) {
            return false;
        }
        Path p = Path.of(line.substring(slash));
        return p.startsWith(root);
    }

    /** One line per leftover of any Wisp cluster or agent; empty when the machine is clean. */
    public static List<String> scan() {
        List<String> found = new ArrayList<>();
        for (String ns : LocalCluster.netnsNames()) {
            if (ns.startsWith("wisp-")) {
                found.add("network namespace " + ns);
            }
        }
        for (String line : Sh.run("ip", "-o", "link", "show").split("\n")) {
            String[] f = line.split(":\\s+");
            if (f.length > 1) {
                String name = f[1].split("@")[0];
                if (name.startsWith("wisp-")) {
                    found.add("link " + name);
                }
            }
        }
        Path cg = Cgroups.wispRoot();
        if (Files.isDirectory(cg)) {
            try (Stream<Path> s = Files.walk(cg)) {
                for (Path dir : s.filter(Files::isDirectory).toList()) {
                    for (long pid : Cgroups.pids(dir, false)) {
                        found.add("process " + pid + " in " + dir);
                    }
                }
            } catch (IOException e) {
                found.add("cgroup " + cg + " (unreadable: " + e.getMessage() + ")");
            }
            found.add("cgroup " + cg);
        }
        found.addAll(listBelow(cg, "cgroup ").stream().filter(l -> Files.isDirectory(Path.of(l.substring(7))))
                .toList());
        found.addAll(listBelow(BPF_PINS, "pinned BPF object "));
        found.addAll(listBelow(LocalCluster.UAPI_SOCKETS, "UAPI socket ").stream().filter(l -> l.startsWith(
                "UAPI socket " + LocalCluster.UAPI_SOCKETS.resolve("wisp-"))).toList());
        return found;
    }

    private static List<String> listBelow(Path root, String what) {
        List<String> found = new ArrayList<>();
        if (!Files.isDirectory(root)) {
            return found;
        }
        try (Stream<Path> s = Files.list(root)) {
            s.forEach(p -> found.add(what + p));
        } catch (IOException e) {
            found.add(what + root + " (unreadable: " + e.getMessage() + ")");
        }
        return found;
    }
}
