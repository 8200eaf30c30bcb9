package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the cgroup v2 hierarchy is mounted and which cgroup a process is in: what an agent needs
 * to attach programs to its own cgroup or to a pod's.
 */
public final class Cgroups {
    private Cgroups() {}

    /** The cgroup v2 mount point (e.g. {@code /sys/fs/cgroup} or {@code /sys/fs/cgroup/unified}). */
    public static Path v2Root() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
            String[] f = line.split(" ");
            if (f.length > 2 && f[2].equals("cgroup2")) {
                return Path.of(f[1]);
            }
        }
        throw new IOException("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
    }

    /** The cgroup v2 path of this process relative to the hierarchy, e.g. {@code /system.slice/wisp.service}. */
    public static String relativePathOfCurrentProcess() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/cgroup"))) {
            if (line.startsWith("0::")) {
                return line.substring(3);
            }
        }
        throw new IOException("this process has no cgroup v2 entry in /proc/self/cgroup");
    }

    /** The directory of this process's cgroup v2. */
    public static Path ofCurrentProcess() throws IOException {
        String relative = relativePathOfCurrentProcess();
        return relative.equals("/") ? v2Root() : v2Root().resolve(relative.substring(1));
    }

    /** The cgroup id the kernel uses (bpf_get_current_cgroup_id): the inode of its directory. */
    public static long id(Path cgroupDir) throws IOException {
        requireNonNull(cgroupDir, "cgroupDir");
        return (Long) Files.getAttribute(cgroupDir, "unix:ino");
    }
}
