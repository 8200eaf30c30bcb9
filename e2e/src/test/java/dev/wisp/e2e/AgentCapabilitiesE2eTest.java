package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The chart's capability set is proven, not listed: the local mesh's agents run with exactly the
 * bounding set of {@code charts/wisp/values.yaml}'s {@code node.capabilities} (the list the
 * DaemonSet's {@code capabilities.add} renders), and capture, HBONE and WireGuard work; then node
 * 1's agent runs without each one in turn and fails at the step that needed it, in its own words.
 * A capability added to the chart without a failure named here fails the test.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class AgentCapabilitiesE2eTest extends ClientServerMeshCase {
    static final Path VALUES = Path.of("..", "charts", "wisp", "values.yaml").toAbsolutePath().normalize();

    /** What the agent says when it runs without each capability of the chart. */
    static final Map<String, String> FAILS_WITHOUT = Map.of(
            "SYS_ADMIN", "cannot start eBPF capture: loading eBPF object 'capture' failed: EPERM",
            "NET_ADMIN", "(the agent needs CAP_NET_ADMIN in the node's network namespace)");

    /** Capability numbers of linux/capability.h, for reading {@code /proc/PID/status}. */
    static final Map<String, Integer> NUMBERS = Map.of("NET_ADMIN", 12, "SYS_ADMIN", 21, "PERFMON", 38, "BPF", 39);

    AgentCapabilitiesE2eTest() {
        super("k8scap", 44, 9000);
    }

    @Override
    MeshSpec.Builder spec(MeshSpec.Builder spec) {
        Prerequisites.requireCommands("setpriv");
        return spec.agentCapabilities(chartCapabilities());
    }

    /** {@code node.capabilities} of the chart's values. */
    static List<String> chartCapabilities() {
        try {
            JsonNode list = new ObjectMapper(new YAMLFactory()).readTree(Files.readString(VALUES)).at(
                    "/node/capabilities");
            List<String> out = new ArrayList<>();
            list.forEach(c -> out.add(c.asText()));
            assertThat(out).as("node.capabilities in " + VALUES).isNotEmpty();
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    @Order(1)
    void withExactlyTheChartsSetPodsAreCapturedAndCarriedOverHbone() throws Exception {
        long expected = mask(chartCapabilities());
        for (String node : List.of("node1", "node2")) {
            long pid = mesh.agentProcess(node).orElseThrow().pid();
            String status = Files.readString(Path.of("/proc", String.valueOf(pid), "status"));
            assertThat(capSet(status, "CapBnd")).as(node + "'s agent's bounding set").isEqualTo(expected);
            assertThat(capSet(status, "CapEff")).as(node + "'s agent's effective set").isEqualTo(expected);
        }
        assertACallIsCarriedOverHbone(9000, 777);
    }

    @Test
    @Order(2)
    void withoutEachCapabilityTheAgentStopsAtTheStepThatNeedsIt() {
        List<String> chart = chartCapabilities();
        for (String missing : chart) {
            assertThat(FAILS_WITHOUT).as("what breaks without " + missing + " (a capability is in the chart only "
                    + "when a test shows what needs it)").containsKey(missing);
            List<String> fewer = new ArrayList<>(chart);
            fewer.remove(missing);
            long offset = mesh.startAgentWithCapabilities("node1", fewer);
            await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(200)).until(() -> mesh
                    .agentProcess("node1").isEmpty());
            assertThat(mesh.log("node1", offset)).as("node1's agent without " + missing).contains(FAILS_WITHOUT.get(
                    missing)).doesNotContain("node agent for node1 ready");
        }
        mesh.restartAgent("node1", false);
        client.awaitAnswers(server, 9000, "server 5", true, Duration.ofSeconds(30));
    }

    /**
     * The measurement behind keeping SYS_ADMIN rather than BPF + PERFMON: with those (and
     * NET_ADMIN) the agent loads and attaches capture, but cannot enter a pod's network namespace
     * for its in-pod listener, so the pod is not enrolled.
     */
    @Test
    @Order(3)
    void bpfAndPerfmonLoadCaptureButOnlySysAdminEntersAPodsNetworkNamespace() {
        long offset = mesh.startAgentWithCapabilities("node1", List.of("BPF", "PERFMON", "NET_ADMIN"));
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(200)).until(() -> mesh.log("node1",
                offset).contains("cannot enroll pod client: "));
        String log = mesh.log("node1", offset);
        assertThat(log).contains("capture: enrolled pod client (cgroup").doesNotContain("cannot start eBPF capture");
        assertThat(log.lines().filter(l -> l.contains("cannot enroll pod client: ")).findFirst().orElseThrow())
                .contains("setns(").contains("entering another network namespace needs CAP_SYS_ADMIN");
        mesh.restartAgent("node1", false);
        client.awaitAnswers(server, 9000, "server 5", true, Duration.ofSeconds(30));
    }

    static long mask(List<String> capabilities) {
        long m = 0;
        for (String c : capabilities) {
            assertThat(NUMBERS).as("the number of CAP_" + c).containsKey(c);
            m |= 1L << NUMBERS.get(c);
        }
        return m;
    }

    /** A capability set line ({@code CapBnd:\t000001ffffffffff}) of {@code /proc/PID/status}. */
    static long capSet(String status, String name) {
        String line = status.lines().filter(l -> l.startsWith(name + ":")).findFirst().orElseThrow();
        return Long.parseUnsignedLong(line.substring(name.length() + 1).strip(), 16);
    }
}
