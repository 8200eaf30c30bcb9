package dev.wisp.spiffe.ca;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;

/**
 * Who may read a CA's private key file, decided on its mode, owner and group (the plug-in CA's
 * {@code ca-key.pem}). Safe is: nothing for others; nothing but read for the group; owned by this
 * process's user or by root; and group-readable only when the file's group is one of this process's
 * own groups.
 *
 * <p>Why the group case: a Kubernetes Secret volume is written by the kubelet as root, and with the
 * pod's {@code securityContext.fsGroup} it chowns each file to that group and adds group read to its
 * {@code defaultMode} (a read-only volume: mode | 0440). So the chart's {@code defaultMode: 0400}
 * becomes {@code root:<fsGroup> 0440}, which a non-root control plane reads through its
 * supplementary group fsGroup, the only way it can (without fsGroup, {@code root:root 0400} is
 * unreadable to it). Sharing the key with the processes that already share the pod's fsGroup (the
 * pod's own containers) exposes it to no one new; a group this process is not in would.
 */
final class KeyFileAccess {
    private KeyFileAccess() {}

    /** This process's effective user and its groups (effective and supplementary), from /proc/self/status. */
    record Process(int uid, Set<Integer> groups) {
        static Process self() {
            int uid = -1;
            Set<Integer> groups = new HashSet<>();
            try {
                for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                    String[] f = line.split("\\s+");
                    if (line.startsWith("Uid:") && f.length > 2) {
                        uid = Integer.parseInt(f[2]);
                    } else if (line.startsWith("Gid:") && f.length > 2) {
                        groups.add(Integer.parseInt(f[2]));
                    } else if (line.startsWith("Groups:")) {
                        for (int i = 1; i < f.length; i++) {
                            groups.add(Integer.parseInt(f[i]));
                        }
                    }
                }
            } catch (IOException | NumberFormatException e) {
                // Unknown: no group counts as ours, and only a root-owned file can pass the owner rule.
            }
            return new Process(uid, Set.copyOf(groups));
        }
    }

    /** Refuses {@code key} (an {@link IllegalArgumentException} saying why and what to do) unless it is safe. */
    static void require(Path key) throws IOException {
        int mode = (Integer) Files.getAttribute(key, "unix:mode");
        int uid = (Integer) Files.getAttribute(key, "unix:uid");
        int gid = (Integer) Files.getAttribute(key, "unix:gid");
        Optional<String> why = unsafe(mode, uid, gid, Process.self());
        if (why.isPresent()) {
            throw new IllegalArgumentException(key + " " + why.get() + " (mode " + String.format("%04o", mode & 07777)
                    + ", owner " + uid + ", group " + gid + "); chmod 600 it, or in Kubernetes mount its Secret "
                    + "with defaultMode 0400 and the pod's fsGroup");
        }
    }

    /** Why a key file with {@code mode}, {@code uid} and {@code gid} is not safe for {@code self}; empty when it is. */
    static Optional<String> unsafe(int mode, int uid, int gid, Process self) {
        if ((mode & 0007) != 0) {
            return Optional.of("may be used by others");
        }
        if ((mode & 0030) != 0) {
            return Optional.of("may be written or executed by its group");
        }
        if (uid != 0 && uid != self.uid()) {
            return Optional.of("is owned by another user, who may change its mode");
        }
        if ((mode & 0040) != 0 && !self.groups().contains(gid)) {
            return Optional.of("may be read by a group this process is not in");
        }
        return Optional.empty();
    }
}
