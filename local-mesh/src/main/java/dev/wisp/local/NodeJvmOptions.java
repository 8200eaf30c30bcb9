package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The node agent's JVM options and process environment, as {@code bin/node-jvm.options} writes them
 * once for every launcher: {@code bin/wisp}, {@code bench/hbone/run.sh} and, through this class, the
 * agents a {@link LocalMesh} starts. The build copies that file onto the class path beside this
 * class, so the e2e agents run with the production options and nobody keeps a second list.
 * <p>
 * Format: one item a line; blank lines and lines starting with {@code #} are ignored; a line
 * {@code NAME=value} (an upper-case name) is an environment variable, any other line one JVM option.
 *
 * @param options the JVM options, in file order
 * @param environment the environment variables, in file order; a caller's own value wins
 */
public record NodeJvmOptions(List<String> options, Map<String, String> environment) {
    /** The class-path resource (next to this class) the build copies {@code bin/node-jvm.options} to. */
    static final String RESOURCE = "node-jvm.options";
    private static final Pattern ENVIRONMENT = Pattern.compile("[A-Z_][A-Z0-9_]*=.*");

    public NodeJvmOptions {
        options = List.copyOf(requireNonNull(options, "options"));
        environment = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(requireNonNull(environment,
                "environment")));
    }

    /** The options the build copied from {@code bin/node-jvm.options}. */
    public static NodeJvmOptions load() {
        try (InputStream in = NodeJvmOptions.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(RESOURCE + " is not on the class path next to "
                        + NodeJvmOptions.class.getName() + ": the build copies it from bin/node-jvm.options");
            }
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
    }

    /** Parses the file's text (see the class comment for the format). */
    public static NodeJvmOptions parse(String text) {
        List<String> options = new ArrayList<>();
        Map<String, String> environment = new LinkedHashMap<>();
        for (String raw : text.split("\n")) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            if (ENVIRONMENT.matcher(line).matches()) {
                int eq = line.indexOf('=');
                environment.put(line.substring(0, eq), line.substring(eq + 1));
            } else {
                options.add(line);
            }
        }
        return new NodeJvmOptions(options, environment);
    }

    /**
     * {@code wispCommand} with these options just before its {@code -cp}, after the command's own JVM
     * options (HotSpot takes the last of a repeated flag, so these win); {@code wispCommand} itself
     * when it is not {@code [<java>, …, -cp, <path>, …]} (e.g. {@code bin/wisp}, which adds them itself).
     */
    public List<String> applyTo(List<String> wispCommand) {
        int cp = wispCommand.indexOf("-cp");
        if (wispCommand.isEmpty() || !wispCommand.getFirst().endsWith("java") || cp < 1) {
            return List.copyOf(wispCommand);
        }
        List<String> out = new ArrayList<>(wispCommand.size() + options.size());
        out.addAll(wispCommand.subList(0, cp));
        out.addAll(options);
        out.addAll(wispCommand.subList(cp, wispCommand.size()));
        return List.copyOf(out);
    }

    /** Sets the environment variables in {@code processEnvironment} that it does not set already. */
    public void applyTo(Map<String, String> processEnvironment) {
        environment.forEach(processEnvironment::putIfAbsent);
    }
}
