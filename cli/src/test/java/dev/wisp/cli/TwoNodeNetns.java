package dev.wisp.cli;

import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * Two "nodes" as network namespaces joined by a veth pair: node n1 at 10.77.0.1 with pod-a
 * (10.77.1.10), node n2 at 10.77.0.2 with pod-b (10.77.2.10). Names carry a random suffix; {@link
 * #close} deletes both namespaces (and so the veth pair).
 *
 * <p>Test code runs "inside" a namespace through {@link #in}: a fresh platform thread calls
 * {@code setns(2)} and then creates its sockets, which stay in that namespace whichever thread uses
 * them later. Agents run as child JVMs under {@code ip netns exec}.
 */
final class TwoNodeNetns implements AutoCloseable {
    private static final Path JAVA = Path.of(ProcessHandle.current().info().command().orElseThrow());
    final String ns1;
    final String ns2;
    private final List<Process> processes = new ArrayList<>();

    TwoNodeNetns() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip");
        String suffix = Long.toHexString(System.nanoTime() & 0xffffff);
        ns1 = "wn1-" + suffix;
        ns2 = "wn2-" + suffix;
        try {
            sh("ip", "netns", "add", ns1);
            sh("ip", "netns", "add", ns2);
            sh("ip", "link", "add", "wva" + suffix, "netns", ns1, "type", "veth", "peer", "name", "wvb" + suffix,
                    "netns", ns2);
            setup(ns1, "wva" + suffix, "10.77.0.1", "10.77.1.10", "10.77.2.0/24", "10.77.0.2");
            setup(ns2, "wvb" + suffix, "10.77.0.2", "10.77.2.10", "10.77.1.0/24", "10.77.0.1");
        } catch (Exception e) {
            close();
            throw e;
        }
    }

    private void setup(String ns, String dev, String nodeIp, String podIp, String peerPods, String via)
            throws Exception {
        sh("ip", "-n", ns, "link", "set", "lo", "up");
        sh("ip", "-n", ns, "link", "set", dev, "up");
        sh("ip", "-n", ns, "addr", "add", nodeIp + "/24", "dev", dev);
        sh("ip", "-n", ns, "addr", "add", podIp + "/32", "dev", dev);
        sh("ip", "-n", ns, "route", "add", peerPods, "via", via);
    }

    /** Runs {@code body} on a platform thread that has entered {@code ns}'s network namespace. */
    static <T> T in(String ns, Callable<T> body) throws Exception {
        return dev.wisp.testing.Netns.call(ns, body, java.time.Duration.ofSeconds(120));
    }

    /**
     * Starts {@code wisp node args…} in {@code ns} as a child JVM; output goes to {@code log}. Netty's
     * leak detector runs at its paranoid level (every buffer tracked), as in the unit tests; {@code ip
     * netns exec} execs the JVM, so the process's pid is the JVM's ({@link #jcmd}).
     */
    Process agent(String ns, Path log, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", ns, JAVA.toString(),
                "--enable-native-access=ALL-UNNAMED", "-Xmx512m", "-Dio.netty.leakDetection.level=paranoid", "-cp",
                System.getProperty("java.class.path"), "dev.wisp.cli.Wisp", "node"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        processes.add(p);
        return p;
    }

    /** {@code jcmd PID COMMAND} with the JDK that runs the tests (and the agents); its output. */
    static String jcmd(Process jvm, String command) throws IOException, InterruptedException {
        return sh(JAVA.resolveSibling("jcmd").toString(), String.valueOf(jvm.pid()), command);
    }

    static String sh(String... cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException(String.join(" ", cmd) + " failed: " + out);
        }
        return out;
    }

    static String log(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file) : "";
        } catch (IOException e) {
            return "";
        }
    }

    @Override
    public void close() throws Exception {
        for (Process p : processes) {
            p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        for (String ns : List.of(ns1, ns2)) {
            try {
                sh("ip", "netns", "del", ns);
            } catch (IOException e) {
                // Not created (setup failed early): nothing to delete.
            }
        }
    }
}
