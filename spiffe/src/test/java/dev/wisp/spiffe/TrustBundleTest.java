package dev.wisp.spiffe;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.spiffe.testing.TestCerts;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrustBundleTest {
    private final Instant now = Instant.now();
    private final TestCerts.Issuer a = TestCerts.rootCa("a", now, now.plus(Duration.ofDays(1)));
    private final TestCerts.Issuer b = TestCerts.rootCa("b", now, now.plus(Duration.ofDays(1)));

    @Test
    void addsAndRemovesRootsImmutably() {
        TrustBundle one = TrustBundle.of("td", a.cert());
        TrustBundle two = one.withRoot(b.cert());
        assertThat(one.roots()).containsExactly(a.cert());
        assertThat(two.roots()).containsExactly(a.cert(), b.cert());
        assertThat(two.withRoot(b.cert())).isSameAs(two);
        assertThat(two.withoutRoot(a.cert()).roots()).containsExactly(b.cert());
        assertThatThrownBy(() -> one.withoutRoot(a.cert())).hasMessageContaining("needs at least one root");
    }

    @Test
    void roundTripsThroughPemFiles(@TempDir Path dir) throws Exception {
        TrustBundle bundle = TrustBundle.of("example.org", a.cert(), b.cert());
        Path file = dir.resolve("bundle.pem");
        bundle.write(file);
        assertThat(Files.readString(file)).startsWith("-----BEGIN CERTIFICATE-----");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).isEqualTo("rw-r--r--");
        assertThat(TrustBundle.read("example.org", file)).isEqualTo(bundle);
    }

    @Test
    void refusesTextWithoutCertificates() {
        assertThatThrownBy(() -> TrustBundle.fromPem("td", "hello")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("trust bundle of td");
        assertThatThrownBy(() -> TrustBundle.of("Bad TD", a.cert())).isInstanceOf(InvalidSpiffeIdException.class);
    }
}
