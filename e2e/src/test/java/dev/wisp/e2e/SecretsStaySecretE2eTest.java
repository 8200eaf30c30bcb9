package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.MeshSpec;
import dev.wisp.testing.SecretScan;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Secrets stay secret: a whole mesh with the control plane and both agents at DEBUG carries calls,
 * takes a DENY policy and lifts it, and issues certificates (the pods' SVIDs, one fetched through
 * the Workload API); then every log line, each agent's {@code /config_dump} and {@code /flows}, the
 * control plane's admin answers and every file under the mesh's work directory (state, pods, keys)
 * are scanned for the run's actual secrets (the CA key, the pods' workload keys, the WireGuard
 * private keys, the node tokens) in any encoding, for PEM private key blocks, and for secret files
 * that others may read. {@code SecretScanTest} shows the scan failing on each planted kind.
 */
class SecretsStaySecretE2eTest extends ClientServerMeshCase {
    SecretsStaySecretE2eTest() {
        super("resec", 86, 9000);
    }

    /** Every process at DEBUG: the level that would print a secret if any code path did. */
    @Override
    MeshSpec.Builder spec(MeshSpec.Builder spec) {
        List<String> debug = new ArrayList<>(MeshSpec.currentJvmWispCommand());
        debug.addAll(List.of("--log-level", "debug"));
        return spec.wispCommand(debug);
    }

    @Test
    void noKeyTokenOrKeyMaterialInLogsAdminAnswersOrReadableFiles() throws Exception {
        await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).until(() -> client.answers(
                server, 9000, "server 5"));
        mesh.apply("deny.yaml", ControlPlaneMeshE2eTest.DENY_CLIENT);
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> !client.answers(
                server, 9000, "server 5"));
        mesh.delete("deny.yaml");
        await().atMost(Duration.ofSeconds(10)).pollInterval(Duration.ofMillis(100)).until(() -> client.answers(
                server, 9000, "server 5"));

        SecretScan scan = SecretScan.empty().key("CA key", caKey(mesh.stateDir().resolve("ca").resolve(
                "root-key.pem")));
        for (String pod : List.of("client", "server")) {
            scan = scan.key("workload key of pod " + pod, workloadKey(pod));
        }
        for (String node : List.of("node1", "node2")) {
            String token = Files.readString(mesh.stateDir().resolve("node-credentials").resolve(node + ".token"))
                    .strip();
            scan = scan.text("token of " + node, token);
            String wg = Files.readString(mesh.workDir().resolve("wireguard").resolve(node).resolve(
                    "wireguard-private.key")).strip();
            scan = scan.bytes("WireGuard key of " + node, Base64.getDecoder().decode(wg));
        }

        List<SecretScan.Finding> found = new ArrayList<>();
        for (String process : List.of("control-plane", "node1", "node2")) {
            String log = mesh.log(process);
            assertThat(log).as(process + " logged at DEBUG").contains(" DEBUG ");
            found.addAll(scan.scanText(process + ".log", log));
        }
        for (String node : List.of("node1", "node2")) {
            for (String path : List.of("/config_dump", "/flows")) {
                found.addAll(scan.scanText(node + " " + path, mesh.agentAdmin(node, path)));
            }
            found.addAll(scan.scanText(node + " /metrics", OpenConnectionPolicyE2eTest.httpGet(mesh.metricsUrl(
                    node))));
        }
        for (String path : List.of("/api/v1/status", "/api/v1/objects?kind=pods",
                "/api/v1/objects?kind=nodes", "/api/v1/objects?kind=meshconfigs", "/api/v1/flows?since=0",
                "/metrics")) {
            found.addAll(scan.scanText("control plane " + path, mesh.controlPlaneAdmin(path)));
        }
        found.addAll(scan.scanFiles(mesh.workDir()));
        assertThat(found).as("secrets seen where they must not be").isEmpty();
    }

    static PrivateKey caKey(Path pem) throws Exception {
        String body = Files.readString(pem).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        return KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(
                body)));
    }

    /** The pod's workload key, as its agent hands it to the pod's processes over the Workload API. */
    PrivateKey workloadKey(String pod) throws Exception {
        Path socket = mesh.workloadApiSocket(pod);
        await().atMost(Duration.ofSeconds(30)).until(() -> Files.exists(socket));
        Process p = mesh.startInPod(pod, PodApps.java(SvidKeyProbe.class, socket.toString()));
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("probe in " + pod + " ended").isTrue();
        String key = out.lines().filter(l -> l.startsWith("key ")).findFirst().orElseThrow(
                () -> new AssertionError("no SVID key from pod " + pod + ": " + out)).substring(4);
        return KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(HexFormat.of().parseHex(key)));
    }
}
