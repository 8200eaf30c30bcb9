package dev.wisp.chart;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.databind.MappingIterator;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import dev.wisp.testing.Prerequisites;

/**
 * The real helm and the schema check of the chart tests, both from the tools directory that
 * {@code scripts/install-deps.sh} fills ({@code $WISP_TEST_TOOLS}, default
 * {@code /opt/wisp-test-tools}). A missing tool fails the test, naming the script.
 */
final class Helm {
    static final Path CHART = Path.of("..", "charts", "wisp").toAbsolutePath().normalize();
    static final String NAMESPACE = "wisp-system";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    /** What a command printed and how it ended. */
    record Run(int exit, String output) {}

    private Helm() {}

    static Path tools() {
        Prerequisites.requireCommands("node");
        Path tools = Path.of(System.getenv().getOrDefault("WISP_TEST_TOOLS", "/opt/wisp-test-tools"));
        if (!Files.isExecutable(tools.resolve("bin/helm"))
                || !Files.isDirectory(tools.resolve("node_modules/@kubernetes/client-node"))) {
            throw new AssertionError("the chart tests need helm and the Kubernetes schema packages in " + tools
                    + "; the README's test command (scripts/test.sh, through scripts/install-deps.sh) installs them");
        }
        return tools;
    }

    static Run helm(String... args) {
        List<String> command = new ArrayList<>();
        command.add(tools().resolve("bin/helm").toString());
        command.addAll(List.of(args));
        return run(command);
    }

    /** {@code helm template} of the chart with the given values files (resources of this package). */
    static List<ObjectNode> template(String... valuesResources) {
        List<String> args = new ArrayList<>(List.of("template", "wisp", CHART.toString(), "--namespace", NAMESPACE,
                "--kube-version", "1.30.0"));
        for (String values : valuesResources) {
            args.add("--values");
            args.add(resource(values).toString());
        }
        Run run = helm(args.toArray(String[]::new));
        if (run.exit() != 0) {
            throw new AssertionError("helm template " + List.of(valuesResources) + " failed:\n" + run.output());
        }
        return parse(run.output());
    }

    static List<ObjectNode> parse(String yaml) {
        List<ObjectNode> objects = new ArrayList<>();
        try (MappingIterator<JsonNode> docs = YAML.readerFor(JsonNode.class).readValues(yaml)) {
            while (docs.hasNext()) {
                JsonNode doc = docs.next();
                if (doc instanceof ObjectNode o && !o.isEmpty()) {
                    objects.add(o);
                }
            }
        } catch (IOException e) {
            throw new AssertionError("rendered YAML does not parse: " + e.getMessage(), e);
        }
        return objects;
    }

    /** The strict Kubernetes schema check (check-objects.mjs) of these objects. */
    static Run check(List<ObjectNode> objects) {
        try {
            Path dir = Files.createTempDirectory("wisp-chart-check");
            Path script = script(dir, "check-objects.mjs");
            ArrayNode array = JSON.createArrayNode();
            objects.forEach(array::add);
            Path file = dir.resolve("objects.json");
            Files.writeString(file, JSON.writeValueAsString(array));
            return run(List.of("node", script.toString(), tools().toString(), file.toString()));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /**
     * The check of Grafana dashboards (check-dashboards.mjs) against Grafana's dashboard schema types
     * from {@code @grafana/schema}, compiled strictly by the TypeScript compiler.
     */
    static Run checkDashboards(List<Path> files) {
        Path tools = tools();
        if (!Files.isDirectory(tools.resolve("node_modules/@grafana/schema"))
                || !Files.isDirectory(tools.resolve("node_modules/typescript"))) {
            throw new AssertionError("the dashboards' check needs @grafana/schema and typescript in " + tools
                    + "; scripts/install-deps.sh installs them");
        }
        try {
            Path dir = Files.createTempDirectory("wisp-dashboards-check");
            List<String> command = new ArrayList<>(List.of("node", script(dir, "check-dashboards.mjs").toString(),
                    tools.toString(), dir.resolve("ts").toString()));
            files.forEach(f -> command.add(f.toAbsolutePath().toString()));
            return run(command);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Prometheus' {@code promtool} (Debian's prometheus package, from scripts/install-deps.sh) run in {@code dir}. */
    static Run promtool(Path dir, String... args) {
        List<String> command = new ArrayList<>();
        command.add(Prerequisites.requireCommands("promtool").getFirst().toString());
        command.addAll(List.of(args));
        return run(command, dir);
    }

    private static Path script(Path dir, String name) throws IOException {
        Path script = dir.resolve(name);
        try (InputStream in = Helm.class.getResourceAsStream(name)) {
            Files.copy(in, script);
        }
        return script;
    }

    static ObjectNode only(List<ObjectNode> objects, String kind, String name) {
        List<ObjectNode> found = objects.stream()
                .filter(o -> o.path("kind").asText().equals(kind)
                        && o.path("metadata").path("name").asText().equals(name))
                .toList();
        if (found.size() != 1) {
            throw new AssertionError("expected one " + kind + " " + name + ", found " + found.size());
        }
        return found.get(0);
    }

    static Path resource(String name) {
        try {
            return Path.of(Helm.class.getResource(name).toURI());
        } catch (Exception e) {
            throw new AssertionError("no test resource " + name, e);
        }
    }

    private static Run run(List<String> command) {
        return run(command, null);
    }

    private static Run run(List<String> command, Path dir) {
        try {
            Process p = new ProcessBuilder(command).directory(dir == null ? null : dir.toFile())
                    .redirectErrorStream(true).start();
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError(command.get(0) + " did not end within 120 s");
            }
            return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new AssertionError("cannot run " + command.get(0) + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
