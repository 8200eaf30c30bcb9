package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.LocalMesh;
import dev.wisp.local.load.LoadRun;
import dev.wisp.local.load.PodLoad;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Issue 16, hitless agent upgrade ({@code wisp node --takeover}) under load, on a two-node local mesh
 * ({@link LoadRun#mesh}: pods load-a and load-b on node 1, echo on node 2; no WireGuard, which a
 * take-over refuses). Pod load-a holds 200 connections echoing every second, pod load-b opens 50
 * connections a second (connect, echo, close) meanwhile, and one node's agent is replaced, first the
 * clients' (node 1), then the server's (node 2): no held connection is reset, no new one refused or
 * reset, the old agent reports 0 connections closed at its deadline and exits 0, and the new agent
 * carries the new connections. Then a connection that outlives the old agent's drain deadline is
 * reset then and counted.
 *
 * <p>Node 2's case is the one that needs the transparent reply path kept in place while the new
 * agent adds the echo pod (the old agent's held connections answer over it) and the client agent's
 * retry of a stream that crossed the old agent's GOAWAY.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@RunsAlone
class HitlessUpgradeE2eTest {
    private static final Logger LOG = LoggerFactory.getLogger(HitlessUpgradeE2eTest.class);
    private static final String CLUSTER = "upg204";
    private static final int HELD = 200;
    private static final int CHURN_PER_SECOND = 50;
    /** Long enough for the held connections to end within it on a loaded machine; the last case waits it out. */
    private static final Duration DRAIN = Duration.ofSeconds(15);
    private static final Pattern DRAINED = Pattern.compile(
            "node agent for (\\S+) drained in \\d+ ms: (\\d+) connections closed at the deadline \\(outbound (\\d+), "
                    + "inbound (\\d+)\\)");

    private LocalMesh mesh;
    private String echoIp;
    private LoadRun.PodRun echo;
    private final List<LoadRun.Failure> echoFailures = new CopyOnWriteArrayList<>();

    @BeforeAll
    void up(@TempDir(cleanup = CleanupMode.ON_SUCCESS) Path dir) throws Exception {
        mesh = PodApps.up(LoadRun.mesh(CLUSTER, 204, dir).wireguard(false).agentArg("--drain-timeout").agentArg(DRAIN
                .toString()));
        echoIp = mesh.pod(LoadRun.SERVER).ip();
        echo = new LoadRun.PodRun(mesh, LoadRun.SERVER, echoFailures, PodLoad.command("serve", "" + LoadRun.HOLD_PORT,
                "" + LoadRun.CHURN_PORT));
        echo.awaitFirst("listening");
    }

    @AfterAll
    void down() throws Exception {
        if (echo != null) {
            echo.stop();
        }
        PodApps.down(mesh, CLUSTER);
    }

    @Test
    @Order(1)
    void replacingTheClientNodesAgentUnderLoadResetsAndRefusesNothing() throws Exception {
        upgradeUnderLoad("node1");
    }

    /**
     * The server's side: the held connections are inbound HBONE streams of the old agent, relayed to
     * the echo pod from the client's address; their ends must reach it within its drain.
     */
    @Test
    @Order(2)
    void replacingTheServerNodesAgentUnderLoadResetsAndRefusesNothing() throws Exception {
        upgradeUnderLoad("node2");
    }

    @Test
    @Order(3)
    void aConnectionOpenPastTheDrainDeadlineIsResetAndCounted() throws Exception {
        List<LoadRun.Failure> failures = new CopyOnWriteArrayList<>();
        LoadRun.PodRun hold = held(failures, 3);
        LocalMesh.AgentTakeover t = mesh.takeOverAgent("node1");
        try {
            Matcher drained = awaitOldAgentsEnd("node1", t);
            assertThat(drained.group(1)).isEqualTo("node1");
            assertThat(drained.group(2)).as("connections closed at the deadline").isEqualTo("3");
            assertThat(drained.group(3)).as("of them outbound").isEqualTo("3");
            assertThat(drained.group(4)).as("of them inbound").isEqualTo("0");
            // The client sees its three connections end at the old agent's deadline (reset).
            await().atMost(Duration.ofSeconds(30)).until(() -> hold.field("failed") == 3);
        } finally {
            hold.stop();
            t.old().destroyForcibly();
        }
        assertThat(failures).hasSize(3).allSatisfy(f -> assertThat(f.pod()).isEqualTo("load-a"));
        assertThat(echoFailures).isEmpty();
    }

    /**
     * 200 held connections and 50 new ones a second while {@code node}'s agent is taken over; the
     * held ones end (closed by the client) within the old agent's drain period.
     */
    private void upgradeUnderLoad(String node) throws Exception {
        List<LoadRun.Failure> failures = new CopyOnWriteArrayList<>();
        LoadRun.PodRun hold = held(failures, HELD);
        LoadRun.PodRun churn = new LoadRun.PodRun(mesh, "load-b", failures, PodLoad.command("churn", echoIp, ""
                + LoadRun.CHURN_PORT, "" + CHURN_PER_SECOND));
        LocalMesh.AgentTakeover t = null;
        try {
            churn.awaitFirst("ready");
            await().atMost(Duration.ofSeconds(60)).until(() -> churn.field("opened") >= CHURN_PER_SECOND);
            long echoesBefore = hold.field("echoes");
            t = mesh.takeOverAgent(node);
            long churnedAtHandOver = churn.field("opened");
            // The held connections echo across the hand-over, then end at once: on a loaded machine the
            // new agent may take much of the old one's drain period to be ready.
            await().atMost(Duration.ofSeconds(10)).until(() -> hold.field("echoes") > echoesBefore);
            assertThat(t.old().isAlive()).as("the old agent, draining the held connections").isTrue();
            hold.stop(); // the held connections end, within the drain period
            // New connections go on through the new agent meanwhile.
            await().atMost(DRAIN).until(() -> churn.field("opened") >= churnedAtHandOver + 2L * CHURN_PER_SECOND);
            Matcher drained = awaitOldAgentsEnd(node, t);
            assertThat(drained.group(1)).isEqualTo(node);
            assertThat(drained.group(2)).as("connections closed at the old agent's deadline").isEqualTo("0");
            assertThat(opened(node)).as("connections the new agent of " + node + " carried").isPositive();
        } finally {
            churn.stop();
            hold.stop();
            if (t != null) {
                t.old().destroyForcibly();
            }
        }
        assertThat(failures).as("resets and refusals seen by the clients").isEmpty();
        assertThat(echoFailures).isEmpty();
        assertThat(hold.field("opened")).isEqualTo(HELD);
        assertThat(hold.field("open")).as("held connections still open when the client closed them").isEqualTo(HELD);
        assertThat(churn.field("opened")).isGreaterThanOrEqualTo(5L * CHURN_PER_SECOND);
    }

    /** {@code n} connections from pod load-a to the echo pod, echoing every second, all open. */
    private LoadRun.PodRun held(List<LoadRun.Failure> failures, int n) throws Exception {
        LoadRun.PodRun hold = new LoadRun.PodRun(mesh, LoadRun.CLIENTS.getFirst(), failures, PodLoad.command("hold",
                echoIp, "" + LoadRun.HOLD_PORT, "" + n, "1000"));
        hold.awaitFirst("ready");
        await().atMost(Duration.ofSeconds(90)).until(() -> hold.field("opened") + hold.field("failed") >= n);
        assertThat(failures).as("failures opening the held connections").isEmpty();
        return hold;
    }

    /**
     * Waits for the old agent of a take-over to exit (0) and returns its drain's summary line from
     * the node's log.
     */
    private Matcher awaitOldAgentsEnd(String node, LocalMesh.AgentTakeover t) throws Exception {
        assertThat(t.old().waitFor(DRAIN.toSeconds() + 30, TimeUnit.SECONDS)).as("the old agent exited").isTrue();
        assertThat(t.old().exitValue()).as("the old agent's exit status").isZero();
        String log = mesh.log(node, t.logOffset());
        Matcher m = DRAINED.matcher(log);
        assertThat(m.find()).as("the old agent's drain summary in %s's log since the take-over:%n%s", node, log)
                .isTrue();
        LOG.info("the old agent of {}: {}", node, m.group()); // its drain time, for the record
        return m;
    }

    /** {@code node}'s agent's outbound or inbound connections opened to the echo pod (its /metrics). */
    private double opened(String node) throws Exception {
        String reporter = node.equals("node1") ? "source" : "destination";
        return OpenConnectionPolicyE2eTest.httpGet(mesh.metricsUrl(node)).lines().filter(l -> l.startsWith(
                "istio_tcp_connections_opened_total{") && l.contains("reporter=\"" + reporter + "\"")).mapToDouble(
                        l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
                .sum();
    }
}
