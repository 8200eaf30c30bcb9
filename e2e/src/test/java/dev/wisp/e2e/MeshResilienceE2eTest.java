package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mesh keeps carrying traffic while its parts restart: a client in a pod on node 1 calls a server
 * pod on node 2 every 100 ms (a new connection per call, captured, over HBONE) while the control
 * plane is killed and restarted, then while node 1's agent restarts. Each call's outcome is one line
 * of the client's log, counted here. WireGuard runs between the nodes (the local mesh's default), so
 * the restarts are those of an agent that also owns the node's WireGuard device.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@RunsAlone
class MeshResilienceE2eTest {
    static final String CLUSTER = "mrst";
    @TempDir
    static Path dir;
    static LocalMesh mesh;
    static String server;
    static Path calls;

    @BeforeAll
    static void up() throws Exception {
        mesh = PodApps.upWithServer(PodApps.clientServerMesh(CLUSTER, 216, dir)
                .wispCommand(jarsOnly(MeshSpec.currentJvmWispCommand())), 9000);
        server = mesh.pod("server").ip();
        calls = mesh.startInPodLogged("client", PodApps.java(PodClient.class, "loop", server, "9000", "100", "100"));
        // Wait for the first successful calls before counting anything.
        await().atMost(Duration.ofSeconds(60)).until(() -> outcomes().stream().anyMatch(Call::ok));
    }

    /**
     * The agents need none of this module's class directories; without them the class path is jars
     * only, which lets {@link LocalMesh} give the agents an AOT class cache (a faster restart).
     */
    static List<String> jarsOnly(List<String> command) {
        int cp = command.indexOf("-cp") + 1;
        List<String> out = new java.util.ArrayList<>(command);
        out.set(cp, java.util.Arrays.stream(command.get(cp).split(java.io.File.pathSeparator)).filter(e -> !Files
                .isDirectory(Path.of(e))).collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator)));
        return out;
    }

    /**
     * 5 s on a machine with at most two runnable threads per core; more in proportion to the load
     * (the 1-minute load average per core over 2), since on a shared 2-core machine at a load of 30 the
     * new agent's JVM gets a tenth of a core and even the control plane takes over a minute to restart.
     */
    static long restartBudgetMillis() throws IOException {
        double load = Double.parseDouble(Files.readString(Path.of("/proc/loadavg")).split(" ")[0]);
        double perCore = load / Runtime.getRuntime().availableProcessors();
        return Math.round(5000 * Math.max(1.0, perCore / 2));
    }

    @AfterAll
    static void down() throws Exception {
        PodApps.down(mesh, CLUSTER);
    }

    record Call(long at, boolean ok, String line) {}

    static List<Call> outcomes() throws IOException {
        return Files.readAllLines(calls).stream().filter(l -> l.matches("\\d+ (ok|failed).*")).map(l -> {
            String[] f = l.split(" ", 3);
            return new Call(Long.parseLong(f[0]), f[1].equals("ok"), l);
        }).toList();
    }

    static List<Call> since(long at) throws IOException {
        return outcomes().stream().filter(c -> c.at() >= at).toList();
    }

    @Test
    @Order(1)
    void killingAndRestartingTheControlPlaneFailsNoCall() throws Exception {
        long start = System.currentTimeMillis();
        await().atMost(Duration.ofSeconds(10)).until(() -> since(start).size() >= 5);
        mesh.killControlPlane();
        long killed = System.currentTimeMillis();
        for (String node : List.of("node1", "node2")) {
            await().atMost(Duration.ofSeconds(30)).until(() -> mesh.log(node).contains("control plane " + mesh
                    .cluster().underlayAddress() + ":" + LocalMesh.XDS_PORT + " unreachable"));
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> since(killed).size() >= 20);
        long restarting = System.currentTimeMillis();
        int duringOutage = since(killed).size();
        mesh.startControlPlane();
        await().atMost(Duration.ofSeconds(60)).until(() -> mesh.controlPlaneAdmin("/metrics").lines().anyMatch(
                l -> l.matches("wisp_xds_connected_agents(\\{.*\\})? 2(\\.0)?")));
        long restarted = System.currentTimeMillis();
        await().atMost(Duration.ofSeconds(10)).until(() -> since(restarted).size() >= 10);
        List<Call> all = since(start);
        List<Call> failed = all.stream().filter(c -> !c.ok()).toList();
        System.out.printf("control plane away %d ms (restart took %d ms): %d calls during the outage, %d in all, "
                + "%d failed%n", restarted - killed, restarted - restarting, duringOutage, all.size(),
                failed
                        .size());
        assertThat(duringOutage).as("calls made while the control plane was away").isGreaterThanOrEqualTo(20);
        assertThat(failed).as("failed calls").isEmpty();
    }

    @Test
    @Order(2)
    void restartingTheClientsNodeAgentResumesCallsWithinFiveSeconds() throws Exception {
        long start = System.currentTimeMillis();
        await().atMost(Duration.ofSeconds(10)).until(() -> since(start).stream().filter(Call::ok).count() >= 5);
        LocalMesh.AgentRestart r = mesh.restartAgent("node1", false);
        // The first call the old agent cannot have carried: started once it had exited.
        Call resumed = await().atMost(Duration.ofSeconds(15)).until(() -> since(r.exited()).stream().filter(
                Call::ok).findFirst().orElse(null), c -> c != null);
        List<Call> during = since(r.stopping()).stream().filter(c -> c.at() <= resumed.at()).toList();
        System.out.printf("agent restart, ms after SIGTERM: old agent exited %d, new process started %d, ready %d, "
                + "first successful call %d (budget %d); %d calls failed meanwhile; load average %s%n"
                + "agent log meanwhile:%n%s", r.exited() - r.stopping(), r.started() - r.stopping(),
                r.ready() - r
                        .stopping(),
                resumed.at() - r.stopping(), restartBudgetMillis(), during.stream().filter(c -> !c.ok()).count(),
                Files.readString(Path
                        .of("/proc/loadavg")).strip(),
                r.log());
        assertThat(resumed.at() - r.stopping()).as("ms from stopping the agent to the first successful call")
                .isLessThanOrEqualTo(restartBudgetMillis());
        await().atMost(Duration.ofSeconds(10)).until(() -> since(resumed.at() + 1).size() >= 10);
        assertThat(since(resumed.at() + 1)).as("calls after resuming").allMatch(Call::ok);
    }
}
