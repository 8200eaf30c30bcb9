package dev.wisp.linux;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import org.junit.jupiter.api.Test;

class CgroupsTest {
    @Test
    void thisProcessIsListedInTheCgroupItIsSaidToBeIn() throws Exception {
        var dir = Cgroups.ofCurrentProcess();
        assertThat(dir).startsWith(Cgroups.v2Root());
        assertThat(Files.readAllLines(dir.resolve("cgroup.procs")))
                .contains(Long.toString(ProcessHandle.current().pid()));
        assertThat(Cgroups.id(dir)).isPositive();
    }
}
