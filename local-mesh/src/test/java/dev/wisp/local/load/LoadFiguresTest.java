package dev.wisp.local.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.wisp.local.load.AgentSampler.Sample;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The pure parts of a load run: the results file's rows, slopes, the summary, the plot, the policies. */
class LoadFiguresTest {
    @TempDir
    Path dir;

    private static Sample at(double t, String node, double rss, double fds) {
        return new Sample(t, node, 42, rss, 10 << 20, 1 << 20, -1, fds, 30);
    }

    @Test
    void rowsRoundTripThroughTheResultsFileWithCommentsAndMissingFigures() throws Exception {
        Sample full = at(10.5, "node1", 123456789, 1017);
        Sample gone = new Sample(20, "node2", -1, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                Double.NaN);
        Path f = dir.resolve("r.txt");
        Files.writeString(f, "# conns run\n" + Sample.HEADER + "\n" + full.csv() + "\n" + gone.csv() + "\n# summary\n");
        assertThat(gone.csv()).isEqualTo("20.0,node2,-1,,,,,,");
        List<Sample> back = AgentSampler.read(f);
        assertThat(back).hasSize(2);
        assertThat(back.get(0)).isEqualTo(full);
        assertThat(back.get(1).node()).isEqualTo("node2");
        assertThat(back.get(1).rss()).isNaN();
    }

    @Test
    void slopeIsTheLeastSquaresLinePerHourAndSkipsMissingPoints() {
        List<Sample> s = new ArrayList<>();
        for (int i = 0; i <= 360; i++) { // one hour every 10 s: 2 MiB/hour of RSS plus a wobble that cancels out
            double wobble = (i % 2 == 0 ? 1 : -1) * (1 << 20);
            s.add(at(i * 10, "node1", (100 << 20) + 2.0 * (1 << 20) * i / 360 + wobble, 500));
        }
        s.add(at(3700, "node1", Double.NaN, 500));
        assertThat(LoadFigures.slopePerHour(s, Sample::rss) / (1 << 20)).isCloseTo(2.0, within(0.05));
        assertThat(LoadFigures.slopePerHour(s, Sample::fds)).isCloseTo(0.0, within(1e-6));
        assertThat(LoadFigures.slopePerHour(s.subList(0, 1), Sample::rss)).isNaN();
    }

    @Test
    void summaryHasOneLinePerAgentAndFigureFromTheSteadyPartAndThePlotOnePanelEach() {
        List<Sample> s = List.of(at(0, "node1", 50 << 20, 100), at(10, "node2", 60 << 20, 200), at(20, "node1",
                70 << 20, 1100), at(30, "node2", 80 << 20, 1200), at(40, "node1", 70 << 20, 1100));
        List<String> sum = LoadFigures.summary(s, 15);
        assertThat(sum).hasSize(2 * LoadFigures.FIGURES.size());
        assertThat(sum.getFirst()).startsWith("node1 RSS").contains("first      70.0")
                .contains("slope     +0.00 MiB/hour");
        assertThat(sum).anySatisfy(l -> assertThat(l).startsWith("node2 open fds").contains("first    1200.0"));
        String svg = LoadFigures.svg("a <b> & c", s, Map.of("restart", 25.0));
        assertThat(svg).startsWith("<svg").contains("a &lt;b&gt; &amp; c").contains(">restart</text>");
        assertThat(svg.split("<polyline", -1)).hasSize(1 + 2 * LoadFigures.FIGURES.size());
    }

    @Test
    void mainPlotsAResultsFileBetweenTwoTimes() throws Exception {
        Path f = dir.resolve("soak-x.txt");
        Files.writeString(f, Sample.HEADER + "\n" + at(0, "node1", 50 << 20, 100).csv() + "\n" + at(10, "node1",
                60 << 20, 200).csv() + "\n" + at(20, "node1", 70 << 20, 300).csv() + "\n");
        LoadFigures.main(new String[]{f.toString(), "5", "15", "restart=12"});
        String svg = Files.readString(dir.resolve("soak-x.svg"));
        assertThat(svg).contains(">restart</text>").contains("soak-x.txt");
        // Only the row at t=10 is inside [5, 15] for the summary; the plot has rows up to 15 s.
        assertThat(svg.split("<polyline", -1)).hasSize(1 + LoadFigures.FIGURES.size());
    }

    @Test
    void everyPolicyVersionAllowsBothClientsOnTheServer() throws Exception {
        for (int i = 0; i < 2; i++) {
            JsonNode p = new YAMLMapper().readTree(LoadRun.policy(i));
            assertThat(p.at("/kind").asText()).isEqualTo("AuthorizationPolicy");
            assertThat(p.at("/spec/action").asText()).isEqualTo("ALLOW");
            assertThat(p.at("/spec/selector/matchLabels/app").asText()).isEqualTo(LoadRun.SERVER);
            JsonNode source = p.at("/spec/rules/0/from/0/source");
            if (i == 0) {
                assertThat(source.get("principals")).extracting(JsonNode::asText).containsExactly(
                        "cluster.local/ns/default/sa/load-a", "cluster.local/ns/default/sa/load-b");
            } else {
                assertThat(source.get("namespaces").get(0).asText()).isEqualTo("default");
                assertThat(p.at("/spec/rules/0/to/0/operation/ports")).extracting(JsonNode::asText).containsExactly(
                        "7001", "7002");
            }
        }
        assertThat(LoadRun.policy(2)).isEqualTo(LoadRun.policy(0)).isNotEqualTo(LoadRun.policy(1));
    }
}
