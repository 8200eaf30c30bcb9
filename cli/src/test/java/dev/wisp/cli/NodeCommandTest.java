package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NodeCommandTest {
    static String[] run(String... args) {
        WispTest.Run r = WispTest.run(args);
        return new String[]{String.valueOf(r.exit()), r.out(), r.err()};
    }

    /** A standalone {@code wisp node} with {@code options} exits 1 with an error that says {@code message}. */
    static void standaloneRefuses(Path dir, String message, String... options) {
        String[] args = Stream.concat(Stream.of("node", "--node", "n1", "--state", "x", "--ca-dir", dir.toString()),
                Stream.of(options)).toArray(String[]::new);
        String[] r = run(args);
        assertThat(r[0]).isEqualTo("1");
        assertThat(r[2]).contains(message);
    }

    @Test
    void helpListsThePorts() {
        String[] r = run("node", "--help");
        assertThat(r[0]).isEqualTo("0");
        assertThat(r[1]).contains("15008 HBONE").contains("--state").contains("--drain-timeout");
    }

    @Test
    void theHboneFlagWinsOverTheMeshConfigAndABadOneIsRefused(@TempDir Path dir) {
        assertThat(String.join(" ", run("node", "--help")[1].split("\\s+"))).contains(
                "When given, it wins over the MeshConfig's spec.hbone.protocol");
        standaloneRefuses(dir, "--hbone: unknown HBONE protocol 'quic': h2, h3 or auto", "--hbone", "quic");
    }

    @Test
    void aBadStateFileIsOneClearError(@TempDir Path dir) throws Exception {
        Path state = dir.resolve("s.yaml");
        Files.writeString(state, "resources:\n  - name: x\n    node: {name: y}\n");
        String[] r = run("node", "--node", "n1", "--state", state.toString(), "--ca-dir", dir.resolve("ca").toString());
        assertThat(r[0]).isEqualTo("1");
        assertThat(r[2]).contains("cannot load the state file").contains("resource 'x'").contains("field name");
    }

    @Test
    void theWorkloadByteRateIsOffByDefaultAndANegativeOneIsRefused(@TempDir Path dir) {
        assertThat(String.join(" ", run("node", "--help")[1].split("\\s+"))).contains(
                "--workload-byte-rate=MIB_PER_S").contains("in MiB/s (default: 0.0: no limit)");
        standaloneRefuses(dir, "--workload-* limits: workload limits need a positive rate, burst and connection cap, "
                + "a wait and a byte rate of zero or more", "--workload-byte-rate", "-1");
    }

    @Test
    void theFairShareIsOffByDefaultAndNonsenseIsRefused(@TempDir Path dir) {
        String help = String.join(" ", run("node", "--help")[1].split("\\s+"));
        assertThat(help).contains("--workload-fair-window=DURATION").contains("(default: PT0S: off;")
                .contains("--workload-fair-quantum=KIB").contains("(default: 64)")
                .contains("--workload-fair-connection-cost=KIB").contains("(default: 64;");
        standaloneRefuses(dir, "--workload-* limits: fair sharing needs a window of zero (off) or more, a positive "
                + "quantum", "--workload-fair-quantum", "0");
    }

    @Test
    void badPortsAreRefused(@TempDir Path dir) {
        standaloneRefuses(dir, "--ports: needs 7", "--ports", "1,2");
    }

    @Test
    void captureNeedsAnExistingPodsDirectory(@TempDir Path dir) throws Exception {
        Path state = dir.resolve("s.yaml");
        Files.writeString(state, "resources:\n  - name: n1\n    node: {name: n1, addresses: [10.0.0.1]}\n");
        String ca = dir.resolve("ca").toString();
        String[] noDir = run("node", "--node", "n1", "--state", state.toString(), "--ca-dir", ca, "--capture");
        assertThat(noDir[0]).isEqualTo("1");
        assertThat(noDir[2]).contains("--capture needs --pods-dir");
        String[] missing = run("node", "--node", "n1", "--state", state.toString(), "--ca-dir", ca, "--capture",
                "--pods-dir", dir.resolve("nope").toString(), "--capture-address", "10.0.0.1");
        assertThat(missing[0]).isEqualTo("1");
        assertThat(missing[2]).contains("pods directory " + dir.resolve("nope") + " does not exist");
    }

    @Test
    void discoveringPodsNeedsCapture(@TempDir Path dir) {
        standaloneRefuses(dir, "--discover-pods needs --capture", "--discover-pods");
    }

    @Test
    void theDnsUpstreamMustBeAnIpAndAPort(@TempDir Path dir) {
        String[] r = run("node", "--node", "n1", "--state", "x", "--ca-dir", dir.toString(), "--dns-upstream",
                "resolver.example:53");
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("Invalid value for option '--dns-upstream': 'resolver.example:53' is not IP:PORT");
        assertThat(run("node", "--help")[1]).contains("15053 DNS");
    }

    @Test
    void theControlPlaneLinkIsCheckedAsAWhole(@TempDir Path dir) {
        String token = dir.resolve("n1.token").toString();
        standaloneRefuses(dir, "give either --state and --ca-dir (standalone) or --control-plane", "--token-file",
                token);
        String[] noBundle = run("node", "--node", "n1", "--control-plane", "127.0.0.1:15012", "--token-file", token);
        assertThat(noBundle[0]).isEqualTo("1");
        assertThat(noBundle[2]).contains("--control-plane needs --ca-bundle");
        String[] badAddress = run("node", "--node", "n1", "--control-plane", "no-port", "--token-file", token,
                "--ca-bundle", dir.resolve("bundle.pem").toString());
        assertThat(badAddress[0]).isEqualTo("1");
        assertThat(badAddress[2]).contains("--control-plane: ");
    }

    @Test
    void theWaypointNeedsTheWholeControlPlaneLink(@TempDir Path dir) {
        String[] r = run("waypoint", "--name", "wp", "--namespace", "ns", "--service-account", "sa",
                "--control-plane", "127.0.0.1:15012", "--ca-bundle", dir.resolve("bundle.pem").toString());
        assertThat(r[0]).isEqualTo("2");
        assertThat(r[2]).contains("give --control-plane HOST:PORT, --token-file FILE and --ca-bundle FILE");
        assertThat(run("waypoint", "--help")[1]).contains("--trust-domain").contains("default: cluster.local");
        assertThat(run("node", "--help")[1]).contains("default: cluster.local");
    }
}
