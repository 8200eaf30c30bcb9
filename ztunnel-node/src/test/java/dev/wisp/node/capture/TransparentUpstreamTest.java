package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.bpf.capture.PodRef;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The fallbacks of {@link TransparentUpstream} that need no pod: counted by reason, capture never
 * asked to let anything through. (The transparent path itself, in a pod's namespace, is
 * {@code ClientAddressE2eTest}'s.)
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

    private double fallbacks(String reason) {
        return registry.get("wisp_upstream_source_fallback").tag("reason", reason).counter().count();
    }
}
