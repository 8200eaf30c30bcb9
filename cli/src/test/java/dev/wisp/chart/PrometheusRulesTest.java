package dev.wisp.chart;

import static dev.wisp.chart.Helm.only;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chart's PrometheusRule ({@code prometheusRule.enabled}), rendered by the real helm: absent by
 * default, valid for Prometheus ({@code promtool check rules}), and each alert fires for the unhealthy
 * instance only and only after its {@code for} ({@code promtool test rules} with
 * prometheus-rules-test.yaml's series).
 */
class PrometheusRulesTest {
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    @Test
    void noRuleUnlessAsked() {
        assertThat(Helm.template()).noneMatch(o -> o.path("kind").asText().equals("PrometheusRule"));
    }

    @Test
    void theAlertsAreValidRulesThatFireForTheUnhealthyOnly(@TempDir Path dir) throws Exception {
        ObjectNode rule = only(Helm.template("monitoring.yaml"), "PrometheusRule", "wisp");
        assertThat(rule.at("/metadata/labels/release").asText()).isEqualTo("prometheus");
        JsonNode groups = rule.at("/spec/groups");
        List<String> alerts = new ArrayList<>();
        groups.forEach(g -> g.path("rules").forEach(r -> alerts.add(r.path("alert").asText())));
        assertThat(alerts).containsExactly("WispAgentXdsDisconnected", "WispAgentXdsUpdatesRejected",
                "WispCertificateExpiringSoon", "WispCertificateExpired", "WispControlPlaneRefusalsRising",
                "WispWireGuardDroppedPackets", "WispDeniedFlowSpike");

        // The rules as rendered, annotations (and their templates) included.
        Path full = dir.resolve("full.yaml");
        YAML.writeValue(full.toFile(), YAML.createObjectNode().set("groups", groups));
        Helm.Run check = Helm.promtool(dir, "check", "rules", full.toString());
        assertThat(check.exit()).as(check.output()).isZero();
        assertThat(check.output()).contains("SUCCESS: 7 rules found");

        // promtool's unit tests compare annotations too; the series test is about expressions and labels.
        JsonNode bare = groups.deepCopy();
        bare.forEach(g -> g.path("rules").forEach(r -> ((ObjectNode) r).remove("annotations")));
        YAML.writeValue(dir.resolve("rules.yaml").toFile(), YAML.createObjectNode().set("groups", bare));
        Files.copy(Helm.resource("prometheus-rules-test.yaml"), dir.resolve("test.yaml"));
        Helm.Run test = Helm.promtool(dir, "test", "rules", "test.yaml");
        assertThat(test.exit()).as(test.output()).isZero();
        assertThat(test.output()).contains("SUCCESS");
    }

    @Test
    void theSpikeAlertIsOptional() throws Exception {
        Path values = Files.createTempFile("wisp-rules", ".yaml");
        try {
            Files.writeString(values, "prometheusRule: {enabled: true}\n");
            Helm.Run run = Helm.helm("template", "wisp", Helm.CHART.toString(), "--namespace", Helm.NAMESPACE,
                    "--values", values.toString(), "--show-only", "templates/prometheusrules.yaml");
            assertThat(run.exit()).as(run.output()).isZero();
            assertThat(run.output()).contains("WispAgentXdsDisconnected").doesNotContain("WispDeniedFlowSpike");
        } finally {
            Files.delete(values);
        }
    }
}
