package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link RunSlot}, in JVMs of their own whose lock files are in a directory of this test (so other
 * runs on the machine do not count): a JVM started while another holds its slot names the same
 * cluster otherwise, and a slot is free again once its JVM has ended, so a lone run keeps one name
 * from run to run and removes what a crashed one left.
 */
class RunSlotTest {
    @TempDir
    Path locks;

    @Test
    void aJvmAtOnceGetsAnotherNameAndAnEndedJvmsSlotIsTakenAgain() throws Exception {
        Process holder = start("slotx", "hold");
        try {
            String held = new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8))
                    .readLine();
            assertThat(held).as("the first JVM: slot 0, the plain name").isEqualTo("slotx");
            assertThat(probe()).as("a JVM started while the first holds its slot").isEqualTo("slotx1");
            assertThat(probe()).as("the next one: slot 1 was freed when the second JVM ended").isEqualTo("slotx1");
        } finally {
            holder.getOutputStream().close();
            assertThat(holder.waitFor(60, TimeUnit.SECONDS)).as("the holding JVM ended").isTrue();
        }
        assertThat(probe()).as("once the first JVM ended, its slot 0").isEqualTo("slotx");
    }

    @Test
    void aNameWithNoRoomForTheSlotIsRefused() {
        assertThatThrownBy(() -> RunSlot.cluster("eightchr")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("at most 7 characters");
    }

    private Process start(String... args) throws Exception {
        return new ProcessBuilder(PodApps.java(List.of("-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Djava.io.tmpdir=" + locks), RunSlotProbe.class, args)).redirectErrorStream(true).start();
    }

    /** A probe JVM's name for cluster {@code slotx}, once it has ended (60 s at most). */
    private String probe() throws Exception {
        Process p = start("slotx");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("the probe JVM ended; it said: %s", out).isTrue();
        assertThat(p.exitValue()).as("the probe's exit status; it said: %s", out).isZero();
        return out.strip();
    }
}
