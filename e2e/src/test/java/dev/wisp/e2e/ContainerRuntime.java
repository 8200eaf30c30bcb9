package dev.wisp.e2e;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What a container runtime does before it starts a container of the chart from the unpacked image,
 * done here with util-linux and libcap's tools: its own mount namespace, into which the host's
 * later mounts propagate ({@code mountPropagation: HostToContainer}); the image's root file system
 * bound on itself, read-only when the container says {@code readOnlyRootFilesystem}; a /proc, a
 * read-only /sys, a /dev holding only the devices a runtime gives every container, an
 * {@code emptyDir} at /tmp, and the pod spec's volumes bound where the container mounts them (the
 * read-only ones read-only); then, from the host's side as runc does it, chroot into the image,
 * the bounding set cut to the container's ({@code drop: [ALL]}, {@code add:} these) with nothing
 * inheritable or ambient, and exec of the command with the image's environment only, as root.
 *
 * <p>Not reproduced: a PID namespace (the process shares the host's: util-linux's {@code unshare
 * --fork} does not pass SIGTERM on, and the local mesh stops its agents with SIGTERM), the seccomp
 * profile, the device cgroup, a user namespace. The chain {@code unshare → sh → capsh → env →
 * wisp → java} only execs, so the process the caller starts is the container's process itself.
 *
 * @param rootfs the unpacked image's root file system
 * @param env the image's environment ({@code NAME=value}), the only one the process gets
 * @param capabilities what the container adds after dropping ALL (e.g. {@code SYS_ADMIN})
 * @param readOnlyRoot {@code readOnlyRootFilesystem}
 * @param volumes the container's volume mounts
 */
record ContainerRuntime(Path rootfs, List<String> env, List<String> capabilities, boolean readOnlyRoot,
        List<Volume> volumes) {

    /** Linux's capabilities by number (linux/capability.h), without their {@code CAP_} prefix. */
    static final List<String> CAPABILITIES = List.of("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID",
            "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",
            "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
            "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
            "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
            "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE");

    /** The devices every container gets (besides /dev/pts and /dev/shm, which nothing here needs). */
    static final List<String> DEVICES = List.of("null", "zero", "full", "random", "urandom", "tty");

    /** A host directory or file {@code host} at {@code path} in the container. */
    record Volume(Path host, String path, boolean readOnly) {
        Volume {
            requireNonNull(host, "host");
            if (!path.startsWith("/") || path.contains("'") || host.toString().contains("'")) {
                throw new IllegalArgumentException("a volume needs an absolute path without quotes: " + path);
            }
        }
    }

    ContainerRuntime {
        env = List.copyOf(env);
        capabilities = List.copyOf(capabilities);
        volumes = List.copyOf(volumes);
        for (String c : capabilities) {
            if (!CAPABILITIES.contains(c)) {
                throw new IllegalArgumentException("not a capability: " + c);
            }
        }
    }

    /** The command that runs {@code args} (the image's program first) as the container's process. */
    List<String> command(List<String> args) {
        StringBuilder s = new StringBuilder("set -e; R=\"$0\"; D=\"$1\"; shift; mount --bind \"$R\" \"$R\"; ");
        for (String d : List.of("proc", "sys", "dev", "tmp")) {
            requireDirectory(d);
        }
        s.append("mount -t proc proc \"$R/proc\"; mount -t sysfs -o ro,nosuid,nodev,noexec sysfs \"$R/sys\"; ");
        s.append("mount -t tmpfs -o nosuid,mode=755 tmpfs \"$R/dev\"; for d in ").append(String.join(" ", DEVICES))
                .append("; do touch \"$R/dev/$d\"; mount --bind \"/dev/$d\" \"$R/dev/$d\"; done; ")
                .append("ln -s /proc/self/fd \"$R/dev/fd\"; ");
        s.append("mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs \"$R/tmp\"; ");
        for (Volume v : volumes) {
            requireNoLink(v.path());
            String target = "\"$R\"'" + v.path() + "'";
            String host = "'" + v.host() + "'";
            // A directory on a directory, a file on a file, as the runtime makes its mount points.
            s.append("if [ -d ").append(host).append(" ]; then mkdir -p ").append(target).append("; else mkdir -p ")
                    .append("\"$(dirname ").append(target).append(")\"; touch ").append(target).append("; fi; ");
            s.append("mount --rbind ").append(host).append(" ").append(target).append("; ");
            if (v.readOnly()) {
                s.append("mount -o remount,bind,ro ").append(target).append("; ");
            }
        }
        if (readOnlyRoot) {
            s.append("mount -o remount,bind,ro \"$R\"; ");
        }
        s.append("exec capsh --chroot=\"$R\" --drop=\"$D\" --inh= --noamb --shell=/usr/bin/env -- -i \"$@\"");
        List<String> cmd = new ArrayList<>(List.of("unshare", "--mount", "--propagation", "slave", "sh", "-c", s
                .toString(), rootfs.toString(), dropped()));
        cmd.addAll(env);
        cmd.addAll(args);
        return cmd;
    }

    /** Every capability of this kernel the container does not add, for capsh's {@code --drop}. */
    String dropped() {
        int last;
        // Read as a stream: Files.readString trusts the size procfs reports and returned "4" of "40".
        try (var in = Files.newInputStream(Path.of("/proc/sys/kernel/cap_last_cap"))) {
            last = Integer.parseInt(new String(in.readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII).strip());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<String> drop = new ArrayList<>();
        for (int i = 0; i <= last; i++) {
            if (i >= CAPABILITIES.size()) {
                drop.add(String.valueOf(i));
            } else if (!capabilities.contains(CAPABILITIES.get(i))) {
                drop.add("cap_" + CAPABILITIES.get(i).toLowerCase(Locale.ROOT));
            }
        }
        return String.join(",", drop);
    }

    /**
     * No directory on the way to {@code path} in the image is a symbolic link: created and mounted on
     * from the host's side, an absolute link would lead to the host's own directory.
     */
    private void requireNoLink(String path) {
        Path p = rootfs;
        for (Path part : Path.of(path.substring(1))) {
            p = p.resolve(part);
            if (Files.isSymbolicLink(p)) {
                throw new IllegalStateException(p + " is a symbolic link in the image: cannot mount " + path);
            }
        }
    }

    /** The image has the mount point {@code d} (a runtime needs it, and a symlink there would lead out). */
    private void requireDirectory(String d) {
        Path p = rootfs.resolve(d);
        if (Files.isSymbolicLink(p) || !Files.isDirectory(p)) {
            throw new IllegalStateException("the image has no directory /" + d + " to mount on");
        }
    }
}
