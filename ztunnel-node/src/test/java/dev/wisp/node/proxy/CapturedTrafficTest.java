package dev.wisp.node.proxy;

import static dev.wisp.node.Fixtures.res;
import static dev.wisp.node.Fixtures.workload;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.api.workload.v1.MtlsMode;
import dev.wisp.node.TwoAgents;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.testing.LogCapture;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

/**
 * Captured traffic (the original destination from the resolver; here fixed to the echo workload):
 * outbound 15001 over HBONE, and plaintext inbound 15006 under PeerAuthentication.
 */
class CapturedTrafficTest {
    @AutoClose
    static final TwoAgents mesh = TwoAgents.started(Duration.ofSeconds(2));
    @AutoClose
    static final LogCapture access = new LogCapture("wisp.access");

    /** Connects from pod-a's address (127.0.0.4) to {@code port}, echoes one line, or reports the failure. */
    static String echo(InetSocketAddress listener) {
        try (Socket s = new Socket()) {
            s.bind(new InetSocketAddress("127.0.0.4", 0));
            s.connect(listener, 5000);
            s.setSoTimeout(10_000);
            s.getOutputStream().write("captured".getBytes());
            s.shutdownOutput();
            return new String(s.getInputStream().readAllBytes());
        } catch (IOException e) {
            return "failed: " + e.getMessage();
        }
    }

    @Test
    void capturedOutboundGoesOverHbone() {
        assertThat(echo(mesh.n1.addresses().get("outbound"))).isEqualTo("captured");
    }

    @Test
    void plaintextInboundFollowsPeerAuthentication() throws Exception {
        InetSocketAddress inbound = mesh.n2.addresses().get("inbound");
        try {
            setMode(MtlsMode.PERMISSIVE);
            assertThat(echo(inbound)).isEqualTo("captured");
            setMode(MtlsMode.STRICT);
            assertThat(echo(inbound)).isNotEqualTo("captured");
            // Refused for the reason under test (STRICT), not for any failure: n2's access log says so.
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> assertThat(access.lines()).anyMatch(l -> l
                    .contains("direction=inbound src.addr=127.0.0.4:") && l.contains("dst.addr=127.0.0.3:")
                    && l.contains("plaintext refused: workload pod-b requires mTLS (PeerAuthentication STRICT)")));
            setMode(MtlsMode.DISABLE);
            assertThat(echo(inbound)).isEqualTo("captured");
        } finally {
            setMode(MtlsMode.MTLS_UNSET);
        }
    }

    static void setMode(MtlsMode mode) throws Exception {
        mesh.apply(StateUpdates.WORKLOAD,
                List.of(res(workload("pod-b", "server", "n2", "127.0.0.3").setMtlsMode(mode))),
                List.of());
    }
}
