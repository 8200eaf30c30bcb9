package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.local.MeshSpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code wisp ca rotate} in a running two-node mesh whose certificates live 30 s: pod client calls
 * pod server (node 1 → node 2 over HBONE) without a pause while the root is added, signs, and the
 * old one is retired once every certificate of it has expired; not one call fails.
 */
class CaRotationE2eTest extends ClientServerMeshCase {
    static final int PORT = 9000;
    /** One workload certificate lifetime, the control plane's --workload-cert-ttl. */
    static final Duration TTL = Duration.ofSeconds(30);
    final List<String> failures = new ArrayList<>();
    int calls;

    CaRotationE2eTest() {
        super("relrot", 80, PORT);
    }

    @Override
    MeshSpec.Builder spec(MeshSpec.Builder spec) {
        return spec.controlPlaneArg("--workload-cert-ttl").controlPlaneArg(TTL.toSeconds() + "s");
    }

    @Test
    void callsNeverFailWhileTheRootIsAddedSwitchedAndRetired() throws Exception {
        assertThat(client.call(server, PORT, 5)).isEqualTo("ok server 5");
        assertThat(step("add")).contains("\"phase\" : \"added\"");
        callFor(Duration.ofSeconds(10));
        assertThat(step("switch")).contains("\"phase\" : \"switched\"");
        // Past one lifetime (and a margin for a loaded machine): every certificate of the old root has
        // expired, so each handshake from here on is between certificates of the new root.
        callFor(TTL.plusSeconds(15));
        String retired = step("retire");
        assertThat(retired).contains("\"phase\" : \"stable\"");
        callFor(Duration.ofSeconds(20));
        assertThat(failures).as("failed calls out of " + calls).isEmpty();
        assertThat(calls).isGreaterThan(20);
        assertThat(mesh.controlPlaneAdmin("/api/v1/ca/rotation")).contains("\"next\" : \"add\"");
    }

    private String step(String step) throws Exception {
        return mesh.controlPlaneAdminPost("/api/v1/ca/rotate?step=" + step);
    }

    /** Calls server one after another for {@code d}: the continuous load, each failure kept. */
    private void callFor(Duration d) throws Exception {
        long end = System.nanoTime() + d.toNanos();
        while (System.nanoTime() < end) {
            String r = client.call(server, PORT, 5);
            calls++;
            if (!r.equals("ok server 5")) {
                failures.add(r);
            }
        }
    }
}
