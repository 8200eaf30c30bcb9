package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * CPU weights for a local mesh's node agents and pods, the way Kubernetes gives them: every container
 * gets a CPU cgroup whose weight follows its CPU request ({@code cpu.shares = millicores x 1024 / 1000}
 * on cgroup v1), under one group for all pods of the node ({@code kubepods}, weighted as the node's
 * allocatable CPU). Without them (the default) every thread of the mesh competes with every other
 * thread of the machine on its own: a pod with 32 busy threads then gets 32 times the CPU of an agent
 * with one busy event loop. With them the node agent (a DaemonSet with a CPU request) and each pod
 * compete as groups, by weight, whatever their thread counts (issue 18, noisy neighbours).
 *
 * <p>The groups are {@code <cpu>/wisp-<cluster>/<member>} in the cgroup v1 {@code cpu} hierarchy, where
 * {@code <member>} is a node's name (its agent) or a pod's; the cluster's group gets {@code cluster}
 * ({@code 1024 x cores} by {@link #ofRequests}: the node's allocatable CPU). On a machine shared with
 * other work, that group competes with every other thread of the machine as one thread of weight
 * {@code cluster / 1024}: give it more to weigh the mesh as the busy threads it would be without
 * groups. A process joins its group before it enters its namespace (as it joins its cgroup2 group), so
 * everything it starts is in it too. Only cgroup v1's {@code cpu}
 * controller is supported: this machine's cgroup2 hierarchy has no {@code cpu} controller, so a
 * {@code cpu.weight} path could not be tested and is not written.
 *
 * @param agent {@code cpu.shares} of each node agent's group
 * @param pod {@code cpu.shares} of each pod's group
 * @param cluster {@code cpu.shares} of the cluster's group, its members' parent
 */
public record CpuShares(int agent, int pod, int cluster) {
    /** cgroup v1's bounds of {@code cpu.shares}. */
    static final int MIN = 2;
    static final int MAX = 262_144;

    public CpuShares {
        if (agent < MIN || agent > MAX || pod < MIN || pod > MAX || cluster < MIN || cluster > MAX) {
            throw new IllegalArgumentException("cpu.shares must be in " + MIN + ".." + MAX + ": agent " + agent
                    + ", pod " + pod + ", cluster " + cluster);
        }
    }

    /**
     * The weights Kubernetes gives containers that request {@code agentMillicores} and {@code
     * podMillicores} of CPU: {@code millicores x 1024 / 1000}, at least {@value #MIN}; the cluster's
     * group weighs the machine's cores ({@code 1024} each).
     */
    public static CpuShares ofRequests(int agentMillicores, int podMillicores) {
        return new CpuShares(shares(agentMillicores), shares(podMillicores), Math.min(MAX, 1024 * Runtime
                .getRuntime().availableProcessors()));
    }

    /** The same, with the cluster's group weighing {@code shares}. */
    public CpuShares withCluster(int shares) {
        return new CpuShares(agent, pod, shares);
    }

    static int shares(int millicores) {
        if (millicores < 0) {
            throw new IllegalArgumentException("a CPU request is zero or more millicores: " + millicores);
        }
        return (int) Math.min(MAX, Math.max(MIN, (long) millicores * 1024 / 1000));
    }

    /** The mount point of cgroup v1's {@code cpu} controller, from /proc/mounts; empty when there is none. */
    static Optional<Path> controller() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/mounts"))) {
                String[] f = line.split(" ");
                if (f.length > 3 && f[2].equals("cgroup") && Arrays.asList(f[3].split(",")).contains("cpu")) {
                    return Optional.of(Path.of(f[1]));
                }
            }
        } catch (IOException e) {
            throw new ClusterException("cannot read /proc/mounts to find the cgroup v1 cpu controller", e);
        }
        return Optional.empty();
    }

    static Path clusterGroup(Path controller, String cluster) {
        return controller.resolve("wisp-" + requireNonNull(cluster, "cluster"));
    }

    /**
     * {@code command} preceded by what makes it join {@code member}'s group of {@code clusterName} (created
     * with {@code shares} if absent) before anything else runs: {@code /bin/sh -c 'echo $$ > PROCS &&
     * exec "$@"' PROCS command...}.
     */
    List<String> joining(String clusterName, String member, boolean isAgent, List<String> command) {
        Path controller = controller().orElseThrow(() -> new ClusterException("CPU shares for the mesh need "
                + "cgroup v1's cpu controller, and none is mounted (cgroup2's cpu.weight is not supported): "
                + "mount -t cgroup -o cpu none /sys/fs/cgroup/cpu, or start the mesh without CPU shares"));
        Path group = clusterGroup(controller, clusterName);
        write(group, cluster);
        Path own = group.resolve(requireNonNull(member, "member"));
        write(own, isAgent ? agent : pod);
        List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", own.resolve(
                "cgroup.procs").toString()));
        argv.addAll(command);
        return argv;
    }

    private static void write(Path group, int shares) {
        try {
            PathCleanup.createDirectories(group);
            Files.writeString(group.resolve("cpu.shares"), Integer.toString(shares));
        } catch (IOException e) {
            throw new ClusterException("cannot set cpu.shares " + shares + " on " + group + ": " + e.getMessage(), e);
        }
    }

    /** Removes cluster {@code cluster}'s groups (their processes are killed with its cgroup2 groups). */
    static void remove(String cluster) {
        Optional<Path> controller = controller();
        if (controller.isPresent()) {
            Cgroups.destroy(clusterGroup(controller.get(), cluster));
        }
    }

    @Override
    public String toString() {
        return "cpu.shares: agent " + agent + ", pod " + pod + ", cluster " + cluster;
    }
}
