package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MeshSpecTest {
    @Test
    void defaultsTurnTheHostLinkOnAndPutConfigUnderTheWorkDirectory() {
        ClusterSpec cluster = ClusterSpec.builder("ms").base(150).pod("a", "default", "a", 0).build();
        assertThat(cluster.hostLink()).isFalse();
        MeshSpec spec = MeshSpec.builder(cluster).workDir(Path.of("/tmp/ms-work")).build();
        assertThat(spec.cluster().hostLink()).as("the host reaches metrics and Prometheus through it").isTrue();
        assertThat(spec.cluster().pods()).isEqualTo(cluster.pods());
        assertThat(spec.configDir()).isEqualTo(Path.of("/tmp/ms-work/config"));
        assertThat(spec.wispCommand()).endsWith("dev.wisp.cli.Wisp").contains("--enable-native-access=ALL-UNNAMED",
                MeshSpec.AGENT_EXPORTS, "-cp", System.getProperty("java.class.path"));
        assertThat(spec.wispCommand().getFirst()).endsWith("java");
        assertThat(LocalMesh.generatedFileName("ms")).isEqualTo("wisp-cluster-ms.yaml");
    }

    @Test
    void servicesGetAddressesOutsideEveryPodCidr() {
        ClusterSpec cluster = ClusterSpec.builder("ms").nodes(50).base(150).build();
        assertThat(LocalMesh.serviceAddress(cluster, 1)).isEqualTo("10.151.250.1");
        assertThatThrownBy(() -> LocalMesh.serviceAddress(cluster, 255)).isInstanceOf(
                IllegalArgumentException.class);
        assertThatThrownBy(() -> new MeshSpec.ServiceSpec("s", "default", Map.of("app", "s"), "10.151.250.1", 0,
                80)).hasMessageContaining("ports must be in 1..65535");
        assertThatThrownBy(() -> MeshSpec.builder(cluster).wispCommand(List.of()).build()).hasMessageContaining(
                "wispCommand is empty");
    }
}
