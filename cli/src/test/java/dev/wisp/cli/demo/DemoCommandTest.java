package dev.wisp.cli.demo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.local.Leftovers;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.Prerequisites;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code wisp demo --duration 1s --prometheus} as a person would run it (a child JVM, as root), its
 * clients calling every 250 ms instead of every second (hidden {@code --call-interval}; the steps wait
 * for a few calls each, so their waits are a quarter as long): it
 * tells the whole story, exits 0 and leaves nothing behind; and so does {@code --stack ipv6}, on a
 * cluster without IPv4, with IPv6 addresses in the UDP call, WireGuard's allowed IPs and the flows,
 * and {@code --stack dual}, whose apps call over IPv4 while WireGuard's peers carry both families.
 */
class DemoCommandTest {
    @TempDir
    Path dir;

    /**
     * Also: a run stopped before its end left the story's waypoint and route in the config dir, and
     * the next run, in force from its first call, failed; the demo removes them first.
     */
    @Test
    void theDemoTellsItsStoryExitsZeroAndLeavesNothing() throws Exception {
        Path config = Files.createDirectories(dir.resolve("work").resolve("config"));
        Files.writeString(config.resolve(DemoWaypoint.WAYPOINT_FILE), DemoWaypoint.WAYPOINT);
        Files.writeString(config.resolve(DemoWaypoint.ROUTE_FILE), DemoWaypoint.ROUTE);
        String out = runDemo();
        assertThat(out).contains("removed an earlier run's " + DemoWaypoint.WAYPOINT_FILE + ", "
                + DemoWaypoint.ROUTE_FILE);
        assertThat(out)
                .containsPattern("addresses in node2's record: 10\\.171\\.0\\.10:[0-9]+ -> 10\\.171\\.1\\.10:8080")
                .containsPattern("client -> 10\\.171\\.1\\.10:[0-9]+  \"hello over WireGuard\"  echoed after")
                .containsPattern("allowed ips: .*10\\.171\\.1\\.0/24");
    }

    @Test
    void onAnIpv6OnlyClusterTheDemoTellsTheSameStoryOverIpv6() throws Exception {
        String out = runDemo("--stack", "ipv6");
        assertThat(out).contains("Starting a 2-node IPv6-only mesh").containsPattern(
                "node2 fd00:170::12: server \\(default\\) fd00:171:1::10")
                .containsPattern("client -> \\[fd00:171:1::10\\]:[0-9]+  \"hello over WireGuard\"  echoed after")
                .containsPattern("allowed ips: .*fd00:171:1::/64").containsPattern("endpoint: \\[fd00:170::12\\]:")
                .containsPattern("curl -s http://\\[fd00:170::12\\]:15020/metrics");
        // Node 2's flow record of the call names both pods' IPv6 addresses.
        assertThat(out).containsPattern("addresses in node2's record: \\[fd00:171::10\\]:[0-9]+ -> "
                + "\\[fd00:171:1::10\\]:8080");
        assertThat(out).doesNotContainPattern("\\b10\\.17[01]\\.");
    }

    @Test
    void onADualStackClusterTheDemoTellsTheSameStory() throws Exception {
        String out = runDemo("--stack", "dual");
        assertThat(out).contains("Starting a 2-node dual-stack mesh")
                .containsPattern("client -> 10\\.171\\.1\\.10:[0-9]+  \"hello over WireGuard\"  echoed after")
                // One peer carries both families: node 2's v4 and v6 addresses and pod prefixes.
                .containsPattern("allowed ips: .*10\\.171\\.1\\.0/24, fd00:170::12/128");
    }

    /** Runs {@code wisp demo --duration 1s --prometheus} with {@code more}; checks the story every stack tells. */
    private String runDemo(String... more) throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nsenter", "prometheus");
        List<String> cmd = new ArrayList<>(MeshSpec.currentJvmWispCommand());
        cmd.addAll(List.of("demo", "--duration", "1s", "--call-interval", "PT0.25S", "--prometheus", "--work-dir", dir
                .resolve("work").toString()));
        cmd.addAll(List.of(more));
        Path output = dir.resolve("demo.out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(output.toFile()).redirectInput(
                ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        boolean ended = p.waitFor(8, TimeUnit.MINUTES);
        if (!ended) {
            p.destroy();
            p.waitFor(60, TimeUnit.SECONDS);
        }
        String out = Files.readString(output, StandardCharsets.UTF_8);
        assertThat(ended).as("the demo ended within 8 minutes:\n" + out).isTrue();
        assertThat(p.exitValue()).as(out).isZero();

        assertThat(out).as(out).contains("== 1/7  Mesh up", "== 2/7  Traffic over mTLS",
                "== 3/7  UDP through WireGuard", "== 4/7  A DENY policy from YAML", "== 5/7  Policy removed",
                "== 6/7  HTTP routing by a waypoint", "== 7/7  Metrics");
        assertThat(out).contains("every 250 ms with plain HTTP").contains("interface: wisp-demo-1")
                .contains("private key: (hidden)")
                .containsPattern("transfer: [1-9][0-9]* B received");
        assertThat(out).contains("client  spiffe://cluster.local/ns/default/sa/client  (certificate checked by node2)")
                .contains("server  spiffe://cluster.local/ns/default/sa/server  (certificate checked by node1)")
                .contains("mTLS: yes");
        assertThat(out).contains("kind: AuthorizationPolicy").contains("reason: ").containsPattern(
                "other/curl: [1-9][0-9]* calls failed since the policy").containsPattern(
                        "denied connections in node2's flows: [1-9]")
                .contains("deny-other");
        assertThat(out).containsPattern("calls restored: other/curl ok again after [0-9.]+ s");
        // 15014 of this host's loopback, or a free port when something else holds it (a shared machine).
        assertThat(out).containsPattern("live mesh page:       http://127\\.0\\.0\\.1:[0-9]+/ui");
        // wisp flows --verdict denied --from other/curl, run by the demo once the policy is gone: its rows
        // are the denied calls of other/curl, as many as node2's agent recorded (the demo checks the count).
        java.util.regex.Matcher denied = java.util.regex.Pattern.compile(
                "what the policy denied: wisp flows --verdict denied --from other/curl\n(.*?)\n  ([0-9]+) denied calls "
                        + "of other/curl: exactly those node2's agent recorded",
                java.util.regex.Pattern.DOTALL).matcher(out);
        assertThat(denied.find()).as(out).isTrue();
        java.util.List<String> rows = denied.group(1).lines().skip(1).toList();
        assertThat(rows).hasSize(Integer.parseInt(denied.group(2))).isNotEmpty().allSatisfy(r -> assertThat(r)
                .contains(" denied ").contains("curl (ns/other/sa/curl)").contains("node2 in"));
        assertThat(out).contains("kind: Gateway", "kind: HTTPRoute", "the mesh started 'wisp waypoint' in pod waypoint")
                .containsPattern(" +[0-9]+  200 hello from server\n").containsPattern(
                        " +[0-9]+  200 hello from server-v2\n")
                .containsPattern("v2's share: [0-9]+ %");
        assertThat(out).contains("istio_tcp_connections_opened_total").containsPattern(
                "\\{source_workload=\"client\"\\} [1-9]").contains(
                        "    sum by (source_workload) (istio_tcp_connections_opened_total{reporter=\"destination\"})");
        assertThat(out).contains("Removed: processes, namespaces, links, cgroups, BPF pins.");
        assertThat(out).doesNotContain("Exception").doesNotContain("\tat ").doesNotContain("error:");
        assertThat(out.lines().filter(l -> !l.contains(dir.toString()))).as("lines over 120 columns")
                .allMatch(l -> l.codePointCount(0, l.length()) <= 120);
        assertThat(Leftovers.scan(DemoCommand.CLUSTER)).as("what the demo left behind").isEmpty();
        try (var files = Files.list(dir.resolve("work").resolve("config"))) {
            assertThat(files.map(f -> f.getFileName().toString())).as("the story's files, after the run")
                    .doesNotContain(DemoStory.POLICY_FILE, DemoWaypoint.WAYPOINT_FILE, DemoWaypoint.ROUTE_FILE);
        }
        return out;
    }
}
