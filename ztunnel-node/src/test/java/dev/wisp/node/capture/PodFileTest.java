package dev.wisp.node.capture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.bpf.capture.PodRef;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class PodFileTest {
    static final Path FILE = Path.of("/run/wisp/pods/a.json");

    static PodRef parse(Path file, String json) throws IOException {
        return PodFile.parse(file, json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void aWellFormedFileBecomesAPodRef() throws IOException {
        PodRef p = parse(FILE, """
                {"uid": "a", "cgroup": "/sys/fs/cgroup/wisp/x/pods/a", "netns": "/var/run/netns/wisp-x-p-a",
                 "ips": ["10.1.0.10", "fd00::a"]}""");
        assertThat(p).isEqualTo(new PodRef("a", Path.of("/sys/fs/cgroup/wisp/x/pods/a"),
                Path.of("/var/run/netns/wisp-x-p-a"), List.of(InetAddress.ofLiteral("10.1.0.10"),
                        InetAddress.ofLiteral("fd00::a"))));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "{\"uid\": \"b\", \"cgroup\": \"/c\", \"netns\": \"/n\", \"ips\": [\"10.0.0.1\"]}|the file must be <uid>.json",
            "{\"uid\": \"a\", \"cgroup\": \"c\", \"netns\": \"/n\", \"ips\": [\"10.0.0.1\"]}|must be an absolute path",
            "{\"uid\": \"a\", \"cgroup\": \"/c\", \"ips\": [\"10.0.0.1\"]}|lacks the text field 'netns'",
            "{\"uid\": \"a\", \"cgroup\": \"/c\", \"netns\": \"/n\", \"ips\": []}|'ips' must be a list",
            "{\"uid\": \"a\", \"cgroup\": \"/c\", \"netns\": \"/n\", \"ips\": [\"pod-b.example\"]}|is not an IP address",
            "[1, 2]|is not a JSON object"})
    void malformedFilesAreRefusedWithTheReason(String json, String reason) {
        assertThatThrownBy(() -> parse(FILE, json)).isInstanceOf(IOException.class).hasMessageContaining(reason)
                .hasMessageContaining(FILE.toString());
    }

    @Test
    void oversizedFilesAreRefusedBeforeParsing() {
        byte[] big = new byte[PodFile.MAX_BYTES + 1];
        assertThatThrownBy(() -> PodFile.parse(FILE, big)).hasMessageContaining("larger than");
    }

    @Test
    void onlyVisibleJsonFilesArePodFiles() {
        assertThat(PodFile.uidOf(Path.of("/d/pod-1.json"))).isEqualTo("pod-1");
        assertThat(PodFile.uidOf(Path.of("/d/.pod-1.json.tmp"))).isNull();
        assertThat(PodFile.uidOf(Path.of("/d/.hidden.json"))).isNull();
        assertThat(PodFile.uidOf(Path.of("/d/pod-1.yaml"))).isNull();
    }
}
