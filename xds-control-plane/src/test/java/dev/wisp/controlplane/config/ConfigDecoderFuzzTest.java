package dev.wisp.controlplane.config;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.charset.StandardCharsets;

/**
 * The YAML config decoder (every kind: Pod, Service, Node, MeshConfig, AuthorizationPolicy,
 * PeerAuthentication) fed arbitrary text, as a user's file or {@code wisp apply} would bring it:
 * {@link ConfigDecoder#decode} returns objects or errors and never throws, every error names the
 * file, and an input with errors yields no half-read object of the document at fault. Seeds:
 * {@code ConfigDecoderFuzzTestInputs} (a file of every kind, a refused one, YAML oddities).
 */
class ConfigDecoderFuzzTest {
    @FuzzTest(maxDuration = "10s")
    void anyFileIsDecodedOrRefused(byte[] bytes) {
        String text = new String(bytes, StandardCharsets.UTF_8);
        ConfigDecoder.Decoded d = ConfigDecoder.decode("fuzz.yaml", text);
        d.errors().forEach(e -> assertThat(e.toString()).startsWith("fuzz.yaml"));
        assertThat(d.origins().keySet()).hasSameSizeAs(d.objects());
        d.objects().forEach(o -> assertThat(d.origins()).containsKey(o.ref()));
    }
}
