package dev.wisp.local;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What Wisp left on the machine: network namespaces and root-namespace links named {@code wisp-*},
 * cgroups under {@code <cgroup2>/wisp}, pinned BPF objects under {@code /sys/fs/bpf/wisp}, and the
 * processes in those cgroups. The end-to-end suite asserts this is empty when it finishes.
 */
public final class Leftovers {
    private Leftovers() {}

    /** What cluster {@code name} left behind; empty when it is gone. */
    public static List<String> scan(String cluster) {
        String ns = "wisp-" + cluster + "-";
        String cg = Cgroups.wispRoot().resolve(cluster).toString();
        String pins = "/sys/fs/bpf/wisp/" + cluster;
        return scan().stream().filter(l -> l.contains(ns) || l.endsWith(" wisp-" + cluster) || l.contains(cg) || l
                .contains(pins)).toList();
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
        for (long pid : Cgroups.pids(cg)) {
            found.add("process " + pid + " in " + cg);
        }
        if (Files.isDirectory(cg)) {
            found.add("cgroup " + cg);
        }
        found.addAll(
                listBelow(cg, "cgroup ").stream().filter(l -> Files.isDirectory(Path.of(l.substring(7)))).toList());
        found.addAll(listBelow(Path.of("/sys/fs/bpf/wisp"), "pinned BPF object "));
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
