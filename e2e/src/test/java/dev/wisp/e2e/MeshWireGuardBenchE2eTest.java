package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.testing.Prerequisites;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code bench/mesh-wireguard/run.sh --quick} (clusters {@code wgb1} on base 172, WireGuard off,
 * and {@code wgb2} on base 174, WireGuard on with {@code spec.wireguard.hboneOverWireGuard: true}):
 * every path of the benchmark moves bytes from the client pod on node 1 to the server pod on node 2,
 * and the captures of the underlay bridge during the two HBONE runs show HBONE's TCP to port 15008
 * between the node addresses when it runs alone, and between the node addresses of the other mesh
 * only WireGuard UDP (no TCP at all, no pod address) when it runs inside WireGuard: HBONE over
 * WireGuard end to end.
 */
class MeshWireGuardBenchE2eTest {
    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
    static final List<String> ROWS = List.of("underlay-tcp", "underlay-udp", "hbone-tcp", "wggo-tcp", "wggo-udp",
            "meshwg-tcp", "meshwg-udp", "hbonewg-tcp");
    static final long MIN_BYTES = 1 << 20;

    @Test
    void everyPathMovesBytesAndHboneOverWireGuardCrossesTheUnderlayOnlyAsWireGuard(@TempDir Path dir)
            throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "iperf3", "wireguard-go", "wg", "tcpdump");
        Path report = dir.resolve("report.txt");
        Path log = dir.resolve("run.log");
        ProcessBuilder pb = new ProcessBuilder(ROOT.resolve("bench/mesh-wireguard/run.sh").toString(), "--quick")
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("WISP_BENCH_OUT", report.toString());
        pb.environment().put("WISP_BENCH_PCAP_DIR", dir.toString());
        long t0 = System.nanoTime();
        Process run = pb.start();
        boolean done = run.waitFor(300, TimeUnit.SECONDS);
        if (!done) {
            run.destroy(); // the script's trap stops the mesh
            run.waitFor(60, TimeUnit.SECONDS);
        }
        String output = Files.readString(log);
        System.out.printf("bench/mesh-wireguard/run.sh --quick: %.1f s, load %s%n%s%n", (System.nanoTime() - t0)
                / 1e9, Files.readString(Path.of("/proc/loadavg")).split(" ")[0], output);
        assertThat(done).as("the quick benchmark ended within 300 s").isTrue();
        assertThat(run.exitValue()).as(output).isZero();

        Map<String, Long> received = receivedBytes(Files.readString(report));
        assertThat(received.keySet()).containsExactlyInAnyOrderElementsOf(ROWS);
        assertThat(received).allSatisfy((row, bytes) -> assertThat(bytes).as(row).isGreaterThanOrEqualTo(
                MIN_BYTES));

        Set<InetAddress> plainNodes = Set.of(InetAddress.ofLiteral("10.172.0.11"), InetAddress.ofLiteral(
                "10.172.0.12"));
        List<MeshWireGuardE2eTest.IpPacket> plain = MeshWireGuardE2eTest.Pcap.packets(Files.readAllBytes(dir.resolve(
                "hbone.pcap")));
        assertThat(plain).as("HBONE alone: TCP to port 15008 between the node addresses").anyMatch(p -> plainNodes
                .contains(p.src()) && plainNodes.contains(p.dst()) && p.protocol() == 6 && p.dstPort() == 15008);

        List<MeshWireGuardE2eTest.IpPacket> wrapped = MeshWireGuardE2eTest.Pcap.packets(Files.readAllBytes(dir.resolve(
                "hbone-in-wg.pcap")));
        Set<InetAddress> wgNodes = Set.of(InetAddress.ofLiteral("10.174.0.11"), InetAddress.ofLiteral("10.174.0.12"));
        assertThat(wrapped.stream().filter(p -> wgNodes.contains(p.src()) && wgNodes.contains(p.dst()) && p
                .wireGuardType() == 4).count()).as("WireGuard transport messages between the nodes")
                .isGreaterThanOrEqualTo(100);
        MeshWireGuardE2eTest.assertOnlyWireGuard(wrapped, wgNodes, Set.of(InetAddress.ofLiteral("10.175.0.10"),
                InetAddress.ofLiteral("10.175.1.10")), 0);
    }

    /** The report's raw lines: row → bytes received. */
    static Map<String, Long> receivedBytes(String report) {
        Map<String, Long> out = new LinkedHashMap<>();
        Matcher m = Pattern.compile("(?m)^  ([a-z]+-(?:tcp|udp)): (\\d+) ").matcher(report);
        while (m.find()) {
            out.put(m.group(1), Long.parseLong(m.group(2)));
        }
        return out;
    }
}
