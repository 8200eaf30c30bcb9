package dev.wisp.bpf;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fails when a committed eBPF object is stale: its source changed after {@code bpf/build-bpf.sh}
 * last ran (the source hash in NAME.bpf.o.sha256 no longer matches), or the object itself was
 * replaced without the script (the object hash no longer matches).
 */
class ObjectFreshnessTest {
    private static final Path MODULE = Path.of(System.getProperty("user.dir"));

    static List<Path> sources() throws IOException {
        try (Stream<Path> main = Files.list(MODULE.resolve("src/main/bpf"));
                Stream<Path> test = Files.list(MODULE.resolve("src/test/bpf"))) {
            return Stream.concat(main, test).filter(p -> p.toString().endsWith(".bpf.c")).sorted().toList();
        }
    }

    @ParameterizedTest
    @MethodSource("sources")
    void committedObjectMatchesItsSource(Path source) throws Exception {
        String scope = source.getParent().getParent().getFileName().toString();
        String name = source.getFileName().toString().replace(".c", "");
        Path object = MODULE.resolve("src/" + scope + "/resources/dev/wisp/bpf/" + name + ".o");
        Path record = Path.of(object + ".sha256");
        assertThat(record).as("no record for %s: run bpf/build-bpf.sh", source).exists();
        List<String> lines = Files.readAllLines(record);

        assertThat(lines.get(0)).as("%s changed since its object was built: run bpf/build-bpf.sh and commit the"
                + " object", source).isEqualTo("source-sha256 " + sha256(source));
        assertThat(lines.get(1)).as("%s does not match its record: rebuild it with bpf/build-bpf.sh", object)
                .isEqualTo("object-sha256 " + sha256(object));
    }

    private static String sha256(Path p) throws IOException, NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p)));
    }
}
