package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.bpf.capture.PodRef;
import dev.wisp.testing.Prerequisites;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.Test;

/**
 * The fallbacks of {@link TransparentUpstream} that need no pod: counted by reason, capture never
 * asked to let anything through; and, in a network namespace standing for a pod, that a second
 * agent adding a pod (a take-over) leaves the reply path the first one installed in place. (The
 * transparent path itself, in a pod's namespace, is {@code ClientAddressE2eTest}'s.)
 */
class TransparentUpstreamTest {
    final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    final List<String> passed = new ArrayList<>();

    @Test
    void aDestinationThatIsNotAnAddedPodsAddressComesFromTheAgentAndIsCountedAsNotCaptured() throws Exception {
        try (TransparentUpstream upstream = new TransparentUpstream(registry,
                (from, to, pass) -> passed.add(from + " " + to + " " + pass))) {
            assertThat(upstream.open(InetAddress.getByName("10.1.0.5"), new InetSocketAddress("10.2.0.7", 8080)))
                    .isEmpty();
            assertThat(upstream.open(InetAddress.getByName("10.1.0.5"), new InetSocketAddress("10.2.0.7", 8080)))
                    .isEmpty();
        }
        assertThat(fallbacks("not_captured")).isEqualTo(2.0);
        assertThat(fallbacks("socket_failed")).isZero();
        assertThat(fallbacks("pass_failed")).isZero();
        assertThat(registry.get("wisp_upstream_source_transparent").counter().count()).isZero();
        assertThat(passed).isEmpty();
    }

    @Test
    void aPodWhoseReplyPathCannotBeInstalledGetsConnectionsFromTheAgentCountedAsNotInstalled() throws Exception {
        InetAddress podIp = InetAddress.getByName("10.2.0.9");
        try (TransparentUpstream upstream = new TransparentUpstream(registry,
                (from, to, pass) -> passed.add(from + " " + to + " " + pass))) {
            // A namespace that does not exist: entering it fails, as a refusal by the kernel would.
            upstream.podAdded(new PodRef("gone", Path.of("/sys/fs/cgroup/none"), Path.of("/nonexistent/netns"),
                    List.of(podIp)));
            assertThat(upstream.open(InetAddress.getByName("10.1.0.5"), new InetSocketAddress(podIp, 8080)))
                    .isEmpty();
            upstream.podRemoved("gone");
            assertThat(upstream.open(InetAddress.getByName("10.1.0.5"), new InetSocketAddress(podIp, 8080)))
                    .isEmpty();
        }
        assertThat(fallbacks("not_installed")).isEqualTo(1.0);
        assertThat(fallbacks("not_captured")).isEqualTo(1.0);
        assertThat(passed).isEmpty();
    }

    /**
     * A new agent ({@code wisp node --takeover}) adds the pods the old one serves, whose connections
     * answer over the reply path it installed: that path must never be missing meanwhile. A
     * delete-then-add did remove it for as long as two ip(8) runs took, and a reply routed away then
     * reached the client pod's node, whose RST killed the application's socket while the old agent's
     * waited to its drain deadline. Every change to the namespace's rules and routes is watched
     * ({@code ip monitor}) between two marker routes.
     */
    @Test
    void aSecondAgentAddingAnInstalledPodRemovesNothingOfItsReplyPath() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip");
        String ns = "wisp-tu-" + ProcessHandle.current().pid();
        ip("netns", "add", ns);
        Process monitor = null;
        try {
            ip("-n", ns, "link", "set", "lo", "up");
            PodRef pod = new PodRef("pod", Path.of("/sys/fs/cgroup/none"), Path.of("/var/run/netns", ns), List.of(
                    InetAddress.ofLiteral("10.9.0.5")));
            List<String> seen = new CopyOnWriteArrayList<>();
            try (TransparentUpstream old = new TransparentUpstream(registry, (from, to, pass) -> {});
                    TransparentUpstream taking = new TransparentUpstream(new PrometheusMeterRegistry(
                            PrometheusConfig.DEFAULT), (from, to, pass) -> {})) {
                old.podAdded(pod);
                assertThat(replyPath(ns)).as("the first agent's reply path").isTrue();
                monitor = new ProcessBuilder("ip", "-n", ns, "monitor", "rule", "route").redirectErrorStream(true)
                        .start();
                Process m = monitor;
                Thread.ofVirtual().start(() -> {
                    try (BufferedReader r = new BufferedReader(new InputStreamReader(m.getInputStream(),
                            StandardCharsets.US_ASCII))) {
                        for (String l; (l = r.readLine()) != null;) {
                            seen.add(l);
                        }
                    } catch (IOException e) {
                        seen.add("monitor failed: " + e);
                    }
                });
                monitorListening(ns, seen);
                marker(ns, "192.0.2.1", seen);
                int from = seen.size();
                taking.podAdded(pod);
                marker(ns, "192.0.2.2", seen);
                List<String> during = seen.subList(from, seen.size());
                assertThat(during).as("rule and route changes while the second agent added the pod").noneMatch(
                        l -> l.startsWith("Deleted"));
                assertThat(replyPath(ns)).as("the reply path, after the second agent added the pod").isTrue();
                assertThat(fallbacks("not_installed")).isZero();
            }
            // Both closed (as agents that stop without handing over): nothing of the path is left.
            assertThat(replyPath(ns)).as("the reply path, after both agents closed").isFalse();
            assertThat(ip("netns", "exec", ns, "cat", "/proc/sys/net/ipv4/tcp_fwmark_accept").strip()).isEqualTo("0");
        } finally {
            if (monitor != null) {
                monitor.destroy();
            }
            ip("netns", "del", ns);
        }
    }

    /**
     * Waits until the monitor has subscribed: a route added before {@code ip monitor} opened its
     * netlink socket is never reported (CI once lost the first marker so, under load). Probe routes
     * are added, one every 100 ms, until one of them is reported.
     */
    private static void monitorListening(String ns, List<String> seen) throws Exception {
        for (int i = 1; i <= 200; i++) {
            String probe = "198.51.100." + i;
            ip("-n", ns, "route", "add", "local", probe, "dev", "lo", "table", "98");
            try {
                await().atMost(Duration.ofMillis(100)).pollInterval(Duration.ofMillis(5)).until(() -> seen.stream()
                        .anyMatch(l -> l.contains(probe)));
                return;
            } catch (ConditionTimeoutException notYet) {
                // added before the monitor listened: the next probe
            }
        }
        throw new AssertionError("ip monitor reported none of 200 probe routes: " + seen);
    }

    /** Adds a route to {@code dst} in a table of its own and waits until the monitor reported it. */
    private static void marker(String ns, String dst, List<String> seen) throws Exception {
        ip("-n", ns, "route", "add", "local", dst, "dev", "lo", "table", "99");
        await().atMost(Duration.ofSeconds(10)).until(() -> seen.stream().anyMatch(l -> l.contains(dst)));
    }

    /** Whether {@code ns} has the fwmark rule and the local route of {@link TransparentUpstream#TABLE}. */
    private static boolean replyPath(String ns) throws Exception {
        return ip("-n", ns, "rule").contains("fwmark 0x" + Integer.toHexString(TransparentUpstream.MARK) + " lookup "
                + TransparentUpstream.TABLE) && ip("-n", ns, "route", "show", "table", "" + TransparentUpstream.TABLE)
                        .contains("local default dev lo");
    }

    private static String ip(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("ip"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("%s: %s", cmd, out).isZero();
        return out;
    }

    private double fallbacks(String reason) {
        return registry.get("wisp_upstream_source_fallback").tag("reason", reason).counter().count();
    }
}
