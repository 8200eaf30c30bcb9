package dev.wisp.local;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
}
