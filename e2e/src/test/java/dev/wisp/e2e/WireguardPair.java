package dev.wisp.cli.wireguard;

import static org.awaitility.Awaitility.await;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

/**
 * Two network namespaces joined by a veth pair (192.168.{@code n}.1 and .2), each running a
 * WireGuard device: the Java one ({@code wisp wireguard -f}, started as a child JVM inside its
 * namespace with the test's own class path) or wireguard-go. Names carry a random suffix; {@link
 * #close} deletes everything it made.
 */
final class NetnsPair implements AutoCloseable {
    final String suffix = HexFormat.of().formatHex(SecureRandom.getSeed(3));
    final int net = 100 + new SecureRandom().nextInt(100);
    final String nsA = "wga" + suffix;
    final String nsB = "wgb" + suffix;
    final String underA = "192.168." + net + ".1";
    final String underB = "192.168." + net + ".2";
    final String tunA = "10." + net + ".0.1";
    final String tunB = "10." + net + ".0.2";
    private final List<Process> javaDevices = new ArrayList<>();
    private final List<String[]> links = new ArrayList<>();

    NetnsPair() {
        Sh.run("ip", "netns", "add", nsA);
        Sh.run("ip", "netns", "add", nsB);
        Sh.run("ip", "link", "add", "va" + suffix, "type", "veth", "peer", "name", "vb" + suffix);
        Sh.run("ip", "link", "set", "va" + suffix, "netns", nsA);
        Sh.run("ip", "link", "set", "vb" + suffix, "netns", nsB);
        Sh.run("ip", "-n", nsA, "addr", "add", underA + "/24", "dev", "va" + suffix);
        Sh.run("ip", "-n", nsB, "addr", "add", underB + "/24", "dev", "vb" + suffix);
        for (String ns : List.of(nsA, nsB)) {
            Sh.run("ip", "-n", ns, "link", "set", "lo", "up");
        }
        Sh.run("ip", "-n", nsA, "link", "set", "va" + suffix, "up");
        Sh.run("ip", "-n", nsB, "link", "set", "vb" + suffix, "up");
    }

    /** Starts the Java device {@code iface} in {@code ns}; {@code env} adds environment variables. */
    void startJava(String ns, String iface, Map<String, String> env, Path log) throws IOException {
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> cmd = List.of("ip", "netns", "exec", ns, java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), "dev.wisp.cli.Wisp", "wireguard", "-f", iface);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(env);
        javaDevices.add(pb.start());
        links.add(new String[]{ns, iface});
        awaitSocket(iface);
    }

    /** Starts wireguard-go {@code iface} in {@code ns} (it daemonizes itself). */
    void startGo(String ns, String iface) {
        Sh.run("ip", "netns", "exec", ns, "wireguard-go", iface);
        links.add(new String[]{ns, iface});
        awaitSocket(iface);
    }

    private static void awaitSocket(String iface) {
        Path sock = Path.of("/var/run/wireguard", iface + ".sock");
        await("UAPI socket " + sock).atMost(Duration.ofSeconds(60)).until(() -> Files.exists(sock));
    }

    String wg(String ns, String... args) {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", ns, "wg"));
        cmd.addAll(List.of(args));
        return Sh.run(cmd.toArray(String[]::new));
    }

    String ip(String ns, String... args) {
        List<String> cmd = new ArrayList<>(List.of("ip", "-n", ns));
        cmd.addAll(List.of(args));
        return Sh.run(cmd.toArray(String[]::new));
    }

    String ping(String ns, String target, int count) {
        return Sh.run(30, "ip", "netns", "exec", ns, "ping", "-c", String.valueOf(count), "-i", "0.2", "-W", "3",
                target);
    }

    /**
     * Runs {@code task} on a fresh platform thread that has entered namespace {@code ns}: sockets it
     * opens live in that namespace.
     */
    static <T> Future<T> inNetns(String ns, Callable<T> task) {
        return dev.wisp.testing.Netns.start(ns, task);
    }

    static <T> T get(Future<T> f, Duration timeout) throws Exception {
        try {
            return f.get(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception ex) {
                throw ex;
            }
            throw e;
        }
    }

    /** True while the Java device processes are alive (none crashed). */
    boolean javaAlive() {
        return javaDevices.stream().allMatch(Process::isAlive);
    }

    @Override
    public void close() {
        for (String[] l : links) {
            Sh.quiet("ip", "-n", l[0], "link", "del", l[1]);
        }
        for (Process p : javaDevices) {
            p.destroy();
            try {
                if (!p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (String[] l : links) {
            try {
                await().atMost(Duration.ofSeconds(10))
                        .until(() -> !Files.exists(Path.of("/var/run/wireguard", l[1] + ".sock")));
            } catch (RuntimeException e) {
                Sh.quiet("rm", "-f", "/var/run/wireguard/" + l[1] + ".sock");
            }
        }
        Sh.quiet("ip", "netns", "del", nsA);
        Sh.quiet("ip", "netns", "del", nsB);
    }
}
