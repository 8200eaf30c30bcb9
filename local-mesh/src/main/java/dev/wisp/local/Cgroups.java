package dev.wisp.local;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The cgroup v2 hierarchy: where it is mounted (the unified root on hybrid systems, e.g.
 * {@code /sys/fs/cgroup/unified}), and creating, emptying and removing Wisp's cgroups under
 * {@code <root>/wisp/}.
 */
public final class Cgroups {
    private Cgroups() {}

    /** The cgroup2 mount point, from /proc/mounts. */
    public static Path root() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/mounts"))) {
                String[] f = line.split(" ");
                if (f.length > 2 && f[2].equals("cgroup2")) {
                    return Path.of(f[1]);
                }
            }
        } catch (IOException e) {
            throw new ClusterException("cannot read /proc/mounts to find cgroup v2", e);
        }
        throw new ClusterException("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)");
    }

    /** {@code <root>/wisp}: every cgroup Wisp creates lives below it. */
    public static Path wispRoot() {
        return root().resolve("wisp");
    }

    static Path create(Path cgroup) {
        try {
            return PathCleanup.createDirectories(cgroup);
        } catch (IOException e) {
            throw new ClusterException("cannot create cgroup " + cgroup + ": " + e.getMessage(), e);
        }
    }

    /** PIDs in {@code cgroup} and every cgroup below it. */
    static List<Long> pids(Path cgroup) {
        return pids(cgroup, true);
    }

    /** PIDs in {@code cgroup}, and in every cgroup below it when {@code below}. */
    static List<Long> pids(Path cgroup, boolean below) {
        List<Long> pids = new ArrayList<>();
        if (!Files.isDirectory(cgroup)) {
            return pids;
        }
        try (Stream<Path> s = Files.walk(cgroup, below ? Integer.MAX_VALUE : 1)) {
            for (Path procs : s.filter(p -> p.getFileName().toString().equals("cgroup.procs")).toList()) {
                for (String line : Files.readAllLines(procs)) {
                    if (!line.isBlank()) {
                        pids.add(Long.parseLong(line.strip()));
                    }
                }
            }
        } catch (IOException e) {
            throw new ClusterException("cannot list processes of cgroup " + cgroup + ": " + e.getMessage(), e);
        }
        return pids;
    }

    /**
     * Kills every process in {@code cgroup} and below, waits (bounded) until they are gone, then
     * removes the cgroups, deepest first.
     */
    static void destroy(Path cgroup) {
        if (!Files.isDirectory(cgroup)) {
            return;
        }
        for (int attempt = 0; attempt < 100; attempt++) {
            List<Long> pids = pids(cgroup);
            if (pids.isEmpty()) {
                break;
            }
            for (long pid : pids) {
                ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            }
            ProcessHandle.of(pids.getFirst()).ifPresent(h -> h.onExit().completeOnTimeout(h, 100,
                    java.util.concurrent.TimeUnit.MILLISECONDS).join());
        }
        List<Long> left = pids(cgroup);
        if (!left.isEmpty()) {
            throw new ClusterException("processes " + left + " in " + cgroup + " did not exit after SIGKILL");
        }
        try (Stream<Path> s = Files.walk(cgroup)) {
            for (Path dir : s.filter(Files::isDirectory).sorted(Comparator.reverseOrder()).toList()) {
                removeWhenReaped(dir);
            }
        } catch (IOException e) {
            throw new ClusterException("cannot remove cgroup " + cgroup + ": " + e.getMessage(), e);
        }
    }

    /**
     * Removes an emptied cgroup. A killed process whose parent has not reaped it yet (e.g. an orphan
     * of a crashed launcher, reaped by init a moment later) still holds its cgroup (EBUSY), so
     * removal is retried for up to 10 s.
     */
    private static void removeWhenReaped(Path dir) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            try {
                Files.deleteIfExists(dir);
                return;
            } catch (FileSystemException e) {
                if (System.nanoTime() > deadline || e.getMessage() == null || !e.getMessage().contains("busy")) {
                    throw e;
                }
            }
            try {
                TimeUnit.MILLISECONDS.sleep(50); // bounded retry while init reaps
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted removing cgroup " + dir, e);
            }
        }
    }
}
