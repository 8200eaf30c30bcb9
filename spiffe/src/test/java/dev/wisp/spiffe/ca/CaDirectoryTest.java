package dev.wisp.spiffe.ca;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.internal.Pem;
import dev.wisp.spiffe.testing.TestCerts;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CaDirectoryTest {
    final SpiffeId cart = SpiffeId.forServiceAccount("example.org", "shop", "cart");

    @Test
    void createsARootOnFirstStartWithA0600KeyAndReloadsItLater(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("ca");
        CaSettings settings = CaSettings.of("example.org", NodeAuthorizer.unrestricted());
        CertificateAuthority first = CertificateAuthority.createOrLoad(dir, settings);

        assertThat(mode(dir.resolve("root-key.pem"))).isEqualTo("rw-------");
        assertThat(mode(dir)).isEqualTo("rwx------");
        assertThat(Files.readString(dir.resolve("root-key.pem"))).startsWith("-----BEGIN PRIVATE KEY-----");
        assertThat(TrustBundle.read("example.org", dir.resolve("bundle.pem"))).isEqualTo(first.bundle());

        CertificateAuthority again = CertificateAuthority.createOrLoad(dir, settings);
        assertThat(again.signingCertificate()).isEqualTo(first.signingCertificate());
        CertificateAuthority opened = CertificateAuthority.open(dir, NodeAuthorizer.unrestricted());
        assertThat(opened.trustDomain()).isEqualTo("example.org");
        opened.issue(cart, null, "cli").leaf().verify(first.signingCertificate().getPublicKey());

        assertThatThrownBy(() -> CertificateAuthority.createOrLoad(dir,
                CaSettings.of("other.org", NodeAuthorizer.unrestricted())))
                .hasMessageContaining("is for trust domain example.org, not other.org");
    }

    @Test
    void persistsRotationAcrossRestarts(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("ca");
        CaSettings settings = CaSettings.of("example.org", NodeAuthorizer.unrestricted());
        CertificateAuthority ca = CertificateAuthority.createOrLoad(dir, settings);
        X509Certificate oldRoot = ca.signingCertificate();
        X509Certificate newRoot = ca.addRoot();
        assertThat(mode(dir.resolve("next-root-key.pem"))).isEqualTo("rw-------");

        CertificateAuthority restarted = CertificateAuthority.open(dir, NodeAuthorizer.unrestricted());
        assertThat(restarted.bundle().roots()).containsExactly(oldRoot, newRoot);
        assertThat(restarted.signingCertificate()).isEqualTo(oldRoot);
        restarted.switchSigning(newRoot);
        restarted.retireRoot(oldRoot);

        CertificateAuthority last = CertificateAuthority.open(dir, NodeAuthorizer.unrestricted());
        assertThat(last.signingCertificate()).isEqualTo(newRoot);
        assertThat(last.bundle().roots()).containsExactly(newRoot);
        assertThat(dir.resolve("next-root-key.pem")).doesNotExist();
        assertThat(mode(dir.resolve("root-key.pem"))).isEqualTo("rw-------");
    }

    @Test
    void openFailsClearlyWithoutACa(@TempDir Path tmp) {
        assertThatThrownBy(() -> CertificateAuthority.open(tmp.resolve("none"), NodeAuthorizer.unrestricted()))
                .hasMessageContaining("no CA directory").hasMessageContaining("wisp ca init");
        assertThatThrownBy(() -> CertificateAuthority.open(tmp, NodeAuthorizer.unrestricted()))
                .hasMessageContaining("holds no CA");
    }

    @Test
    void pluggedInIntermediateSignsAndItsChainReachesTheRoot(@TempDir Path tmp) throws Exception {
        Instant now = Instant.now();
        TestCerts.Issuer root = TestCerts.rootCa("corp root", now.minusSeconds(60), now.plus(Duration.ofDays(30)));
        TestCerts.Issuer intermediate = TestCerts.intermediate(root, "mesh intermediate", now.minusSeconds(60),
                now.plus(Duration.ofDays(20)));
        Path chain = tmp.resolve("chain.pem");
        Path key = tmp.resolve("key.pem");
        Files.writeString(chain, Pem.encode(List.of(intermediate.cert(), root.cert())));
        Files.writeString(key, Pem.encode(intermediate.key()));

        CertificateAuthority ca = CertificateAuthority.pluggedIn(chain, key,
                CaSettings.of("example.org", NodeAuthorizer.unrestricted()));
        assertThat(ca.bundle().roots()).containsExactly(root.cert());
        List<X509Certificate> issued = ca.sign(CertificateRequest.generate(cart).der(), Duration.ofDays(60), "n");
        assertThat(issued).containsExactly(issued.get(0), intermediate.cert());
        issued.get(0).verify(intermediate.cert().getPublicKey());
        // Capped at the intermediate's own expiry.
        assertThat(issued.get(0).getNotAfter()).isEqualTo(intermediate.cert().getNotAfter());

        Files.writeString(key, Pem.encode(root.key()));
        assertThatThrownBy(() -> CertificateAuthority.pluggedIn(chain, key,
                CaSettings.of("example.org", NodeAuthorizer.unrestricted()))).hasMessageContaining("is not the key");
        Files.writeString(key, Pem.encode(intermediate.key()));
        Files.writeString(chain, Pem.encode(List.of(intermediate.cert())));
        assertThatThrownBy(() -> CertificateAuthority.pluggedIn(chain, key,
                CaSettings.of("example.org", NodeAuthorizer.unrestricted())))
                .hasMessageContaining("must end with its self-signed root");
    }

    private static String mode(Path p) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }
}
