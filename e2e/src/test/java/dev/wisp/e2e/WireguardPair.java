package dev.wisp.e2e;

import static org.awaitility.Awaitility.await;

import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.Sh;
import dev.wisp.testing.Prerequisites;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Two nodes of a {@link LocalCluster} without agents (their underlay addresses {@link #underA} and
 * {@link #underB} on one bridge), each running a WireGuard device with a fresh key pair: the Java
 * one ({@code wisp wireguard -f}, a child JVM in node A's namespace with the test's own class path)
 * and wireguard-go in node B's. The devices are named after the cluster ({@code wisp-C-j},
 * {@code wisp-C-g}), so their UAPI sockets go with the cluster; {@link #close} removes everything.
 * Configuration is left to the test ({@code wg set}), as an operator would do it.
 */
final class WireguardPair implements AutoCloseable {
    static final int PORT_A = 51820;
    static final int PORT_B = 51821;
    final LocalCluster cluster;
    final int base;
    final String nsA;
    final String nsB;
    final String underA;
    final String underB;
    final String tunA;
    final String tunB;
    final String javaIf;
    final String goIf;
    final Path keyA;
    final Path keyB;
    final String pubA;
    final String pubB;
    final Path javaLog;
    private final Process javaDevice;

    /**
     * Builds cluster {@code name} (underlay {@code 10.base.0.0/24}, tunnel {@code 10.(base+2).0.0/24})
     * and starts both devices; {@code javaEnv} adds environment variables to the Java device (the
     * test-only timers and thresholds of {@code wisp wireguard}).
     */
    static WireguardPair up(String name, int base, Map<String, String> javaEnv) throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "wg", "wireguard-go", "ping", "nft");
        LocalCluster cluster = LocalCluster.up(ClusterSpec.builder(name).nodes(2).base(base).build());
        try {
            return new WireguardPair(cluster, base, javaEnv);
        } catch (Exception | AssertionError e) {
            cluster.close();
            throw e;
        }
    }

    private WireguardPair(LocalCluster cluster, int base, Map<String, String> javaEnv) throws Exception {
        this.cluster = cluster;
        this.base = base;
        nsA = cluster.node(0).netns();
        nsB = cluster.node(1).netns();
        underA = cluster.node(0).address();
        underB = cluster.node(1).address();
        tunA = "10." + (base + 2) + ".0.1";
        tunB = "10." + (base + 2) + ".0.2";
        javaIf = cluster.wireguardName("j");
        goIf = cluster.wireguardName("g");
        Path dir = Files.createDirectories(Path.of("target", "wireguard-interop"));
        javaLog = dir.resolve(javaIf + ".log");
        keyA = Files.createTempFile("wisp-wg", ".key");
        keyB = Files.createTempFile("wisp-wg", ".key");
        Files.writeString(keyA, Sh.run("wg", "genkey"));
        Files.writeString(keyB, Sh.run("wg", "genkey"));
        pubA = Sh.run("sh", "-c", "wg pubkey < " + keyA).trim();
        pubB = Sh.run("sh", "-c", "wg pubkey < " + keyB).trim();
        ProcessBuilder pb = cluster.onNode(cluster.node(0), PodApps.wisp(List.of(), List.of("wireguard", "-f",
                javaIf))).redirectErrorStream(true).redirectOutput(javaLog.toFile()).redirectInput(
                        ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(javaEnv);
        javaDevice = pb.start();
        awaitSocket(javaIf);
        // wireguard-go daemonizes itself; it stays in node B's namespace and cgroup.
        Sh.run(cluster.onNode(cluster.node(1), List.of("wireguard-go", goIf)).command());
        awaitSocket(goIf);
    }

    private static void awaitSocket(String iface) {
        Path sock = Path.of("/var/run/wireguard", iface + ".sock");
        await("UAPI socket " + sock).atMost(Duration.ofSeconds(60)).until(() -> Files.exists(sock));
    }

    /** {@code ip netns exec ns args…} (30 s at most); its stdout. */
    static String in(String ns, String... args) {
        List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", ns));
        cmd.addAll(List.of(args));
        return Sh.run(cmd);
    }

    String wg(String ns, String... args) {
        List<String> cmd = new ArrayList<>(List.of("wg"));
        cmd.addAll(List.of(args));
        return in(ns, cmd.toArray(String[]::new));
    }

    String ip(String ns, String... args) {
        List<String> cmd = new ArrayList<>(List.of("ip", "-n", ns));
        cmd.addAll(List.of(args));
        return Sh.run(cmd);
    }

    String ping(String ns, String target, int count) {
        return Sh.run(List.of("ip", "netns", "exec", ns, "ping", "-c", String.valueOf(count), "-i", "0.2", "-W", "3",
                target));
    }

    /** The tunnel's IPv6 address of side 1 (Java) or 2 (wireguard-go). */
    String v6(int host) {
        return "fd00:" + base + "::" + host;
    }

    /** Gives both devices their keys and ports, the tunnel addresses, and sets them up. */
    void configureInterfaces() {
        wg(nsA, "set", javaIf, "private-key", keyA.toString(), "listen-port", String.valueOf(PORT_A));
        wg(nsB, "set", goIf, "private-key", keyB.toString(), "listen-port", String.valueOf(PORT_B));
        ip(nsA, "addr", "add", tunA + "/24", "dev", javaIf);
        ip(nsB, "addr", "add", tunB + "/24", "dev", goIf);
        ip(nsA, "addr", "add", v6(1) + "/64", "dev", javaIf);
        ip(nsB, "addr", "add", v6(2) + "/64", "dev", goIf);
        ip(nsA, "link", "set", javaIf, "up");
        ip(nsB, "link", "set", goIf, "up");
    }

    /** True while the Java device is alive (it did not crash). */
    boolean javaAlive() {
        return javaDevice.isAlive();
    }

    @Override
    public void close() throws Exception {
        // SIGTERM first: the Java device removes its interface and socket (a test checks that).
        javaDevice.destroy();
        if (!javaDevice.waitFor(10, TimeUnit.SECONDS)) {
            javaDevice.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        try {
            PodApps.down(cluster, cluster.spec().name());
        } finally {
            Files.deleteIfExists(keyA);
            Files.deleteIfExists(keyB);
        }
    }
}
