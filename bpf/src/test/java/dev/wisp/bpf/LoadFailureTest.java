package dev.wisp.bpf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.wisp.testing.Prerequisites;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** A program the verifier refuses, and a process without privilege: each gives a one-line cause. */
class LoadFailureTest {

    @Test
    void aVerifierRejectionGivesOneLineAtErrorAndTheFullLogAtDebug() throws Exception {
        Prerequisites.requireRoot();
        Logger logger = (Logger) LoggerFactory.getLogger(BpfObject.class);
        ListAppender<ILoggingEvent> appender = new ListAppender<>();
        appender.start();
        logger.addAppender(appender);
        try (BpfObject object = BpfObject.openResource(getClass(), "/dev/wisp/bpf/rejected.bpf.o", null)) {
            BpfException e = catchThrowableOfType(BpfException.class, object::load);

            assertThat(e.getMessage()).doesNotContain("\n")
                    .startsWith("loading eBPF object 'rejected' failed: EACCES")
                    .endsWith("program 'unchecked_lookup' rejected by the verifier: "
                            + "R0 invalid mem access 'map_value_or_null' (verifier log at debug level)");
            assertThat(e.log()).contains("-- BEGIN PROG LOAD LOG --", "call bpf_map_lookup_elem");
            assertThat(e.log().lines().count()).isGreaterThan(5);
            List<ILoggingEvent> events = appender.list;
            assertThat(events).filteredOn(ev -> ev.getLevel() == Level.ERROR).singleElement()
                    .satisfies(ev -> assertThat(ev.getFormattedMessage()).isEqualTo(e.getMessage()));
            assertThat(events).filteredOn(ev -> ev.getLevel() == Level.DEBUG)
                    .anySatisfy(ev -> assertThat(ev.getFormattedMessage()).contains("-- BEGIN PROG LOAD LOG --",
                            "R0 invalid mem access"));
        } finally {
            logger.detachAppender(appender);
        }
    }

    @Test
    void withoutPrivilegeOpeningCaptureSaysWhatIsMissingInOneLine() throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("setpriv");
        Path pins = Path.of("/sys/fs/bpf/wisp-test-noprivs-" + ProcessHandle.current().pid());
        Path out = Files.createTempFile("load-probe", ".out");
        try {
            // Root without any capability: what an agent started without CAP_BPF/CAP_NET_ADMIN gets.
            Process p = new ProcessBuilder("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--",
                    ProcessHandle.current().info().command().orElseThrow(), "--enable-native-access=ALL-UNNAMED",
                    "-cp", System.getProperty("java.class.path"), LoadProbe.class.getName(), pins.toString(),
                    "/sys/fs/cgroup").redirectErrorStream(true).redirectOutput(out.toFile()).start();
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
            List<String> lines = Files.readAllLines(out);

            assertThat(lines).contains("lines=1");
            assertThat(lines).filteredOn(l -> l.startsWith("cause=")).singleElement().asString()
                    .contains("failed: EPERM (operation not permitted)").contains("CAP_BPF");
        } finally {
            Files.deleteIfExists(out);
            if (Files.isDirectory(pins)) {
                try (var s = Files.walk(pins)) {
                    for (Path x : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                        Files.deleteIfExists(x);
                    }
                }
            }
        }
    }
}
