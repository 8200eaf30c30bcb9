package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProcessLogTest {
    @TempDir
    Path dir;

    @Test
    void firstProblemsAreDistinctUpToNumbersStartAtTheOffsetAndStopAtMax() throws Exception {
        Path file = dir.resolve("node1.log");
        String before = "05:00:00.000 WARN  [main] x old warning before the offset\n";
        Files.writeString(file, before + """
                05:00:01.000 INFO  [main] x ready
                05:00:02.100 WARN  [io-1] wisp.access connection complete src.addr=10.0.0.1:4000 error="refused"
                05:00:03.200 WARN  [io-1] wisp.access connection complete src.addr=10.0.0.1:4002 error="refused"
                05:00:04.000 INFO  [io-1] wisp.access connection complete src.addr=10.0.0.1:4004 error="reset"
                05:00:05.000 ERROR [main] x the second problem
                05:00:06.000 WARN  [main] x the third problem
                05:00:07.000 WARN  [main] x the fourth problem
                """, StandardCharsets.UTF_8);
        ProcessLog log = new ProcessLog(file);

        assertThat(log.firstProblems(before.length(), 3)).containsExactly(
                "05:00:02.100 WARN  [io-1] wisp.access connection complete src.addr=10.0.0.1:4000 error=\"refused\"",
                "05:00:04.000 INFO  [io-1] wisp.access connection complete src.addr=10.0.0.1:4004 error=\"reset\"",
                "05:00:05.000 ERROR [main] x the second problem");
        assertThat(log.firstProblems(0, 1)).containsExactly(before.strip());
        assertThat(new ProcessLog(dir.resolve("absent.log")).firstProblems(0, 5)).isEmpty();
    }

    /**
     * A process that exits before its log says it is ready fails the wait at once (long before the
     * deadline), naming its status and showing what it wrote since the offset, not before it.
     */
    @Test
    void aProcessThatExitsFailsTheWaitAtOnceWithTheLogsEnd() throws Exception {
        ProcessLog log = logAfterAnEarlierRun("cp.log", "ready (an earlier run)");
        long offset = log.size();
        Process p = run(log, "echo starting; echo 'boom: no config'; exit 3");
        long t0 = System.nanoTime();

        assertThatThrownBy(() -> log.awaitReady("the thing", p, offset, Duration.ofMinutes(10), text -> text
                .contains("ready"))).isInstanceOf(ClusterException.class)
                .hasMessageContaining("the thing exited (status 3) before it was ready; see " + log.file())
                .hasMessageContaining("the log's last 2 lines:")
                .hasMessageEndingWith("starting" + System.lineSeparator() + "boom: no config")
                .hasMessageNotContaining("an earlier run");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofMinutes(5));
    }

    /** Readiness is judged on what the current run wrote: an earlier run's "ready" does not count. */
    @Test
    void theWaitEndsWhenTheLogSinceTheOffsetSaysReady() throws Exception {
        ProcessLog log = logAfterAnEarlierRun("agent.log", "node agent ready (an earlier run)");
        long offset = log.size();
        Process p = run(log, "echo 'node agent ready'; exec sleep 600");
        try {
            log.awaitReady("the agent", p, offset, Duration.ofSeconds(60), text -> text.contains("agent ready"));
            assertThat(log.since(offset)).isEqualTo("node agent ready\n");
        } finally {
            p.destroyForcibly().waitFor();
        }
    }

    private ProcessLog logAfterAnEarlierRun(String name, String earlierLine) throws IOException {
        Path file = dir.resolve(name);
        Files.writeString(file, earlierLine + "\n", StandardCharsets.UTF_8);
        return new ProcessLog(file);
    }

    /** {@code script} run by sh, its output appended to {@code log}. */
    private static Process run(ProcessLog log, String script) throws IOException {
        return new ProcessBuilder(List.of("sh", "-c", script)).redirectErrorStream(true).redirectOutput(log
                .appendTo()).start();
    }
}
