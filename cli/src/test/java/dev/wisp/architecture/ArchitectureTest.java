package dev.wisp.architecture;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.architecture.ClassGraph.WispClass;
import org.junit.jupiter.api.Test;

/**
 * The real main classes of every module keep ARCHITECTURE.md's arrows ({@link ArchitectureRules}). The cli
 * module's tests see every library and agent on their class path, which is why the check lives here.
 */
class ArchitectureTest {

    private static final ClassGraph GRAPH = ClassGraph.fromClassPath();

    @Test
    void everyModuleOfTheMapIsOnTheClassPath() {
        // Without this the rules could pass on an empty or partial class path.
        assertThat(GRAPH.modules()).containsExactlyInAnyOrderElementsOf(ArchitectureRules.MODULE_DEPENDENCIES.keySet());
    }

    @Test
    void theScannerSeesRealArrows() {
        // Known arrows the code has: if references were not read, the rules would see nothing to refuse.
        WispClass cluster = GRAPH.get("dev.wisp.cli.cluster.ClusterCommand");
        assertThat(cluster).isNotNull();
        assertThat(cluster.module()).isEqualTo("cli");
        assertThat(cluster.references()).anyMatch(r -> r.startsWith("dev.wisp.local."));
        assertThat(GRAPH.classes().values())
                .anyMatch(c -> c.module().equals("ztunnel-node") && c.references().stream()
                        .anyMatch(r -> r.startsWith("dev.wisp.api.workload.v1.")));
    }

    @Test
    void mainCodeKeepsTheArchitecture() {
        assertThat(ArchitectureRules.violations(GRAPH)).isEmpty();
    }
}
