package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.wisp.bpf.capture.PodRef;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Pods-directory files are written by the node's pod plumbing, which the agent does not trust:
 * whatever the bytes, {@link PodFile#parse} returns a pod whose fields hold what the file promised
 * (absolute paths, 1-16 addresses, the file's uid) or throws {@link IOException} — never another
 * exception, which would end the directory scan for every pod. Seeds: {@code PodFileFuzzTestInputs}.
 */
class PodFileFuzzTest {
    static final Path FILE = Path.of("/run/wisp/pods/p1.json");

    @FuzzTest(maxDuration = "10s")
    void anyBytesParseOrAreRefused(byte[] bytes) {
        try {
            PodRef pod = PodFile.parse(FILE, bytes);
            assertThat(pod.id()).isEqualTo("p1");
            assertThat(pod.cgroup().isAbsolute()).isTrue();
            assertThat(pod.netns().isAbsolute()).isTrue();
            assertThat(pod.ips()).hasSizeBetween(1, 16);
        } catch (IOException expected) {
            assertThat(expected.getMessage()).contains(FILE.toString());
        }
    }
}
