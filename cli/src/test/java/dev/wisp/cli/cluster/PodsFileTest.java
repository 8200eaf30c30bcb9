package dev.wisp.cli.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.cli.UserException;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.MeshSpec;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PodsFileTest {
    static final String FILE = """
            pods:
            - {name: client, namespace: shop, serviceAccount: web, node: node1}
            - {name: server, node: node2, labels: {app: api, tier: back}}
            services:
            - {name: api, namespace: default, selector: {app: api}, port: 80, targetPort: 8080}
            """;

    @Test
    void podsAndServicesAreReadWithDefaults() {
        PodsFile f = PodsFile.parse("pods.yaml", FILE, 2);
        assertThat(f.pods()).containsExactly(new ClusterSpec.PodSpec("client", "shop", "web", 0, Map.of("app",
                "client")), new ClusterSpec.PodSpec("server", "default", "default", 1,
                        Map.of("app", "api", "tier",
                                "back")));
        ClusterSpec cluster = ClusterSpec.builder("t").nodes(2).base(150).build();
        assertThat(f.serviceSpecs(cluster)).containsExactly(new MeshSpec.ServiceSpec("api", "default", Map.of("app",
                "api"), "10.151.250.1", 80, 8080));
    }

    @Test
    void mistakesAreRefusedNamingThePlace() {
        assertThatThrownBy(() -> PodsFile.parse("p.yaml", "pods:\n- {name: a, node: node3}\n", 2)).isInstanceOf(
                UserException.class).hasMessage("p.yaml: pods[0].node: 'node3' is not one of node1..node2");
        assertThatThrownBy(() -> PodsFile.parse("p.yaml", "pods:\n- {name: a, node: node1, nmespace: x}\n", 2))
                .hasMessageStartingWith("p.yaml: pods[0]: unknown field 'nmespace'");
        assertThatThrownBy(() -> PodsFile.parse("p.yaml", "pods:\n- {node: node1}\n", 2)).hasMessage(
                "p.yaml: pods[0]: 'name' is required");
        assertThatThrownBy(() -> PodsFile.parse("p.yaml", "pods: [\n", 2)).hasMessageStartingWith(
                "p.yaml: not YAML");
        assertThatThrownBy(() -> PodsFile.parse("p.yaml", "services:\n- {name: s, selector: {a: b}, port: 0}\n", 2)
                .serviceSpecs(ClusterSpec.builder("t").build())).hasMessageContaining("ports must be in 1..65535");
    }
}
