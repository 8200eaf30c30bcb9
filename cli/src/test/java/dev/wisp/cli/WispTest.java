package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class WispTest {
    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        CommandLine cl = Wisp.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int exit = cl.execute(args);
        return new Run(exit, out.toString(), err.toString());
    }

    @Test
    void helpDescribesTheMesh() {
        Run r = run("--help");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains("Usage: wisp").contains("sidecarless service mesh").contains("--log-level");
    }

    @Test
    void everyCommandsDescriptionLinesStayWholeInItsHelp() {
        java.util.List<String> broken = new java.util.ArrayList<>();
        java.util.ArrayDeque<CommandLine> todo = new java.util.ArrayDeque<>(java.util.List.of(Wisp.commandLine()));
        int lines = 0;
        while (!todo.isEmpty()) {
            CommandLine c = todo.poll();
            todo.addAll(c.getSubcommands().values());
            String usage = c.getUsageMessage(CommandLine.Help.Ansi.OFF);
            for (String line : c.getCommandSpec().usageMessage().description()) {
                if (line.isBlank() || line.length() > Wisp.HELP_WIDTH || line.contains("$") || line.contains("%")) {
                    continue; // blank, or a paragraph picocli wraps, or markup it rewrites
                }
                lines++;
                if (!usage.contains(line.strip())) {
                    broken.add(c.getCommandSpec().qualifiedName() + ": " + line);
                }
            }
        }
        assertThat(lines).as("description lines checked").isGreaterThan(50);
        assertThat(broken).as("description lines the help broke in two").isEmpty();
    }

    @Test
    void versionNamesTheJavaRuntime() {
        Run r = run("--version");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).startsWith("wisp ").contains("Java " + Runtime.version().feature());
    }

    @Test
    void unknownOptionIsAUsageError() {
        Run r = run("--no-such-option");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("Unknown option: '--no-such-option'");
    }

    @Test
    void badLogLevelIsRefusedByName() {
        Run r = run("--log-level", "loud");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("'loud' is not one of error, warn, info, debug, trace");
    }
}
