package dev.wisp.chart;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chart's Grafana dashboards against Grafana's own dashboard schema: the types {@code
 * @grafana/schema} generates from it ({@code Dashboard}, and each panel type's {@code Options}),
 * compiled strictly by the TypeScript compiler, where an unknown field, a wrong type, a missing
 * required field or an unknown enum value is an error. Planted mistakes prove the check bites.
 */
class DashboardSchemaTest {
    static final Path DASHBOARDS = Helm.CHART.resolve("dashboards");
    static final ObjectMapper JSON = new ObjectMapper();

    static List<Path> dashboards() throws IOException {
        try (Stream<Path> s = Files.list(DASHBOARDS)) {
            return s.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
    }

    @Test
    void everyDashboardMatchesGrafanasSchema() throws IOException {
        List<Path> files = dashboards();
        assertThat(files).extracting(p -> p.getFileName().toString()).containsExactly("control-plane.json",
                "mesh-overview.json", "node-agent.json", "wireguard.json", "workload.json");
        Helm.Run run = Helm.checkDashboards(files);
        assertThat(run.exit()).as(run.output()).isZero();
        assertThat(run.output()).contains("checked 5 dashboards against @grafana/schema, 0 problems");
    }

    /** One mistake per copy of a real dashboard, each of which the check must report on its own. */
    @Test
    void plantedMistakesAreFound(@TempDir Path dir) throws IOException {
        List<Path> planted = List.of(
                plant(dir, "top-level", d -> d.put("refreshInterval", "5s")), // the field is "refresh"
                plant(dir, "grid", d -> ((ObjectNode) d.path("panels").get(0).path("gridPos")).put("width", 6)),
                plant(dir, "enum", d -> ((ObjectNode) d.path("panels").get(0).path("options")).put("colorMode",
                        "rainbow")),
                plant(dir, "required", d -> ((ObjectNode) d.path("panels").get(4).path("options").path("legend"))
                        .remove("calcs")),
                plant(dir, "variable", d -> ((ObjectNode) d.path("templating").path("list").get(1)).put("includeAl",
                        true)));
        Helm.Run run = Helm.checkDashboards(planted);
        assertThat(run.exit()).isEqualTo(1);
        assertThat(run.output().lines().filter(l -> l.contains("planted-"))).hasSize(5);
        assertThat(run.output()).contains("planted-top-level.json").contains("'\"refreshInterval\"' does not exist")
                .contains("'\"width\"' does not exist").contains("Type '\"rainbow\"' is not assignable")
                .contains("Property 'calcs' is missing").contains("'\"includeAl\"' does not exist")
                .contains("5 problems");
    }

    static Path plant(Path dir, String name, java.util.function.Consumer<ObjectNode> mistake) throws IOException {
        ObjectNode d = (ObjectNode) JSON.readTree(DASHBOARDS.resolve("mesh-overview.json").toFile());
        mistake.accept(d);
        Path file = dir.resolve("planted-" + name + ".json");
        JSON.writeValue(file.toFile(), d);
        return file;
    }
}
