package dev.wisp.bpf.capture;

import dev.wisp.linux.Cgroups;
import dev.wisp.linux.Libc;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * A node and three pods made of network namespaces and cgroup v2 directories, all with a random
 * suffix and all removed by {@link #close}. The node namespace routes between the pods: pod i has
 * {@code 10.N.i.2/24} on its eth0, the node {@code 10.N.i.1} on the other end of the veth.
 * The test JVM itself moves into the lab's "agent" cgroup (and back on close), so that the agent
 * hook never attaches to the machine's root cgroup.
 */
final class PodLab implements AutoCloseable {
    static final Path CGROUP2 = cgroup2Root();

    final String suffix = Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xffff));
    final int net = ThreadLocalRandom.current().nextInt(100, 200);
    final String node = "wnode-" + suffix;
    final List<String> pods = List.of("wpa-" + suffix, "wpb-" + suffix, "wpc-" + suffix);
    final Path cgroupBase = CGROUP2.resolve("wisp-test-" + suffix);
    final Path agentCgroup = cgroupBase.resolve("agent");
    private final String originalCgroup;

    PodLab() throws Exception {
        originalCgroup = ownCgroup();
        try {
            sh("ip netns add " + node);
            sh("ip -n " + node + " link set lo up");
            sh("ip netns exec " + node + " sysctl -qw net.ipv4.ip_forward=1");
            sh("ip netns exec " + node + " sysctl -qw net.ipv6.conf.all.forwarding=1");
            for (int i = 0; i < pods.size(); i++) {
                String pod = pods.get(i);
                String hostSide = "wv" + i + suffix;
                sh("ip netns add " + pod);
                sh("ip -n " + pod + " link set lo up");
                sh("ip link add " + hostSide + " netns " + node + " type veth peer name eth0 netns " + pod);
                sh("ip -n " + node + " addr add " + nodeIp(i) + "/24 dev " + hostSide);
                sh("ip -n " + node + " link set " + hostSide + " up");
                sh("ip -n " + pod + " addr add " + podIp(i) + "/24 dev eth0");
                sh("ip -n " + pod + " link set eth0 up");
                sh("ip -n " + pod + " route add default via " + nodeIp(i));
                sh("ip -n " + node + " addr add " + nodeIp6(i) + "/64 dev " + hostSide + " nodad");
                sh("ip -n " + pod + " addr add " + podIp6(i) + "/64 dev eth0 nodad");
                sh("ip -n " + pod + " -6 route add default via " + nodeIp6(i));
                Files.createDirectories(cgroup(i));
            }
            Files.createDirectories(agentCgroup);
            Files.writeString(agentCgroup.resolve("cgroup.procs"), Integer.toString(Libc.getpid()));
        } catch (Exception e) {
            close();
            throw e;
        }
    }

    String podIp(int i) {
        return "10." + net + "." + (i + 1) + ".2";
    }

    String podIp6(int i) {
        return "fd00:" + net + ":" + (i + 1) + "::2";
    }

    String nodeIp6(int i) {
        return "fd00:" + net + ":" + (i + 1) + "::1";
    }

    String nodeIp(int i) {
        return "10." + net + "." + (i + 1) + ".1";
    }

    InetAddress podAddress(int i) throws IOException {
        return InetAddress.getByName(podIp(i));
    }

    InetAddress nodeAddress(int i) throws IOException {
        return InetAddress.getByName(nodeIp(i));
    }

    Path cgroup(int i) {
        return cgroupBase.resolve("pod" + i);
    }

    Path netns(String name) {
        return Path.of("/run/netns", name);
    }

    PodRef podRef(int i, boolean withNetns) throws IOException {
        return new PodRef(pods.get(i), cgroup(i), withNetns ? netns(pods.get(i)) : null, List.of(podAddress(i)));
    }

    long cgroupId(int i) throws IOException {
        return Cgroups.id(cgroup(i));
    }

    /** Runs {@code command} inside pod i: its cgroup and its network namespace. */
    Result inPod(int i, List<String> command, long timeoutSeconds) throws Exception {
        List<String> full = new ArrayList<>(List.of("sh", "-c",
                "echo $$ > " + cgroup(i).resolve("cgroup.procs") + " && exec ip netns exec " + pods.get(i) + " \"$@\"",
                "sh"));
        full.addAll(command);
        return run(full, timeoutSeconds);
    }

    /** Calls {@code body} on a new platform thread that has entered namespace {@code name}. */
    static <T> T inNetns(String name, Callable<T> body) throws Exception {
        return dev.wisp.testing.Netns.call(name, body, java.time.Duration.ofMinutes(5));
    }

    record Result(int exit, String stdout, String stderr) {}

    static Result run(List<String> command, long timeoutSeconds) throws Exception {
        Path out = Files.createTempFile("wisp-lab", ".out");
        Path err = Files.createTempFile("wisp-lab", ".err");
        try {
            Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                throw new AssertionError("timed out after " + timeoutSeconds + " s: " + command);
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    static String sh(String command) throws Exception {
        Result r = run(List.of("sh", "-c", command), 30);
        if (r.exit() != 0) {
            throw new IllegalStateException(command + " failed (" + r.exit() + "): " + r.stderr().strip());
        }
        return r.stdout();
    }

    private static String ownCgroup() throws IOException {
        return Cgroups.relativePathOfCurrentProcess();
    }

    private static Path cgroup2Root() {
        try {
            return Cgroups.v2Root();
        } catch (IOException e) {
            throw new AssertionError("the capture tests need a cgroup v2 hierarchy: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() throws Exception {
        List<String> problems = new ArrayList<>();
        try {
            Files.writeString(CGROUP2.resolve(originalCgroup.substring(1)).resolve("cgroup.procs"),
                    Integer.toString(Libc.getpid()));
        } catch (IOException e) {
            problems.add("moving back to cgroup " + originalCgroup + ": " + e);
        }
        for (String ns : pods) {
            quietly(problems, "ip netns del " + ns);
        }
        quietly(problems, "ip netns del " + node);
        for (int i = 0; i < pods.size(); i++) {
            deleteCgroup(problems, cgroup(i));
        }
        deleteCgroup(problems, agentCgroup);
        deleteCgroup(problems, cgroupBase);
        if (!problems.isEmpty()) {
            throw new IllegalStateException("lab cleanup: " + problems);
        }
    }

    private static void deleteCgroup(List<String> problems, Path dir) {
        try {
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            problems.add("rmdir " + dir + ": " + e);
        }
    }

    private static void quietly(List<String> problems, String command) {
        try {
            Result r = run(List.of("sh", "-c", command), 30);
            if (r.exit() != 0 && !r.stderr().contains("No such file")) {
                problems.add(command + ": " + r.stderr().strip());
            }
        } catch (Exception e) {
            problems.add(command + ": " + e);
        }
    }
}
