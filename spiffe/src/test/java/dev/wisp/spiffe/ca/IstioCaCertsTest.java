package dev.wisp.spiffe.ca;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.SpiffeId;
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

/** Istio's {@code cacerts} layout as a plug-in CA: it signs, and each broken layout is refused naming its file. */
class IstioCaCertsTest {
    static final CaSettings SETTINGS = CaSettings.of("example.org", NodeAuthorizer.unrestricted());
    final Instant now = Instant.now();
    final TestCerts.Issuer root = TestCerts.rootCa("corp root", now.minusSeconds(60), now.plus(Duration.ofDays(30)));
    final TestCerts.Issuer intermediate = TestCerts.intermediate(root, "mesh intermediate", now.minusSeconds(60),
            now.plus(Duration.ofDays(20)));
    @TempDir
    Path dir;

    void write(TestCerts.Issuer ca, List<X509Certificate> chain, X509Certificate rootCert) throws Exception {
        Files.writeString(dir.resolve("ca-cert.pem"), Pem.encode(ca.cert()));
        Files.writeString(dir.resolve("ca-key.pem"), Pem.encode(ca.key()));
        Files.setPosixFilePermissions(dir.resolve("ca-key.pem"), PosixFilePermissions.fromString("rw-------"));
        Files.writeString(dir.resolve("root-cert.pem"), Pem.encode(rootCert));
        Files.writeString(dir.resolve("cert-chain.pem"), Pem.encode(chain));
    }

    @Test
    void anIntermediateSignsAndTheRootIsTheBundle() throws Exception {
        assertThat(CertificateAuthority.hasCacerts(dir)).isFalse();
        assertThat(CertificateAuthority.hasCacerts(dir.resolve("absent"))).isFalse();
        write(intermediate, List.of(intermediate.cert(), root.cert()), root.cert());
        assertThat(CertificateAuthority.hasCacerts(dir)).isTrue();
        CertificateAuthority ca = CertificateAuthority.fromCacerts(dir, SETTINGS);
        assertThat(ca.bundle().roots()).containsExactly(root.cert());
        assertThat(ca.signingRoot()).isEqualTo(root.cert());
        List<X509Certificate> issued = ca.sign(CertificateRequest.generate(SpiffeId.parse(
                "spiffe://example.org/ns/shop/sa/cart")).der(), Duration.ofHours(1), "n");
        assertThat(issued).hasSize(2);
        issued.get(0).verify(intermediate.cert().getPublicKey());
        assertThat(issued.get(1)).isEqualTo(intermediate.cert());
        // cert-chain.pem without the root is completed with root-cert.pem.
        write(intermediate, List.of(intermediate.cert()), root.cert());
        assertThat(CertificateAuthority.fromCacerts(dir, SETTINGS).bundle().roots()).containsExactly(root.cert());
    }

    /** A Secret volume with the pod's fsGroup: root:<fsGroup> 0440, read through the group (here: our own group). */
    @Test
    void aKeyReadableByAGroupOfThisProcessIsAccepted() throws Exception {
        write(intermediate, List.of(intermediate.cert(), root.cert()), root.cert());
        Files.setPosixFilePermissions(dir.resolve("ca-key.pem"), PosixFilePermissions.fromString("r--r-----"));
        assertThat(CertificateAuthority.fromCacerts(dir, SETTINGS).signingCertificate()).isEqualTo(intermediate
                .cert());
    }

    @Test
    void theKeysModeOwnerAndGroupDecideWhoMayReadIt() {
        KeyFileAccess.Process self = new KeyFileAccess.Process(1337, java.util.Set.of(1337, 5));
        assertThat(KeyFileAccess.unsafe(0600, 1337, 1337, self)).isEmpty();
        assertThat(KeyFileAccess.unsafe(0400, 0, 0, self)).as("root's, unreadable to us: refused by the read")
                .isEmpty();
        assertThat(KeyFileAccess.unsafe(0440, 0, 1337, self)).as("a Secret with fsGroup 1337").isEmpty();
        assertThat(KeyFileAccess.unsafe(0440, 0, 5, self)).as("a supplementary group of ours").isEmpty();
        assertThat(KeyFileAccess.unsafe(0440, 0, 1000, self)).hasValue("may be read by a group this process is not in");
        assertThat(KeyFileAccess.unsafe(0444, 0, 1337, self)).hasValue("may be used by others");
        assertThat(KeyFileAccess.unsafe(0604, 1337, 1337, self)).hasValue("may be used by others");
        assertThat(KeyFileAccess.unsafe(0660, 0, 1337, self)).hasValue("may be written or executed by its group");
        assertThat(KeyFileAccess.unsafe(0600, 1000, 1337, self)).hasValue(
                "is owned by another user, who may change its mode");
    }

    @Test
    void eachBrokenLayoutIsRefusedNamingTheFile() throws Exception {
        write(intermediate, List.of(intermediate.cert(), root.cert()), root.cert());
        Files.delete(dir.resolve("root-cert.pem"));
        assertThatThrownBy(() -> CertificateAuthority.fromCacerts(dir, SETTINGS))
                .hasMessage(dir + ": missing root-cert.pem (Istio's cacerts layout needs ca-cert.pem, ca-key.pem, "
                        + "root-cert.pem, cert-chain.pem)");

        write(intermediate, List.of(intermediate.cert(), root.cert()), root.cert());
        Files.setPosixFilePermissions(dir.resolve("ca-key.pem"), PosixFilePermissions.fromString("rw-r--r--"));
        int uid = (Integer) Files.getAttribute(dir.resolve("ca-key.pem"), "unix:uid");
        int gid = (Integer) Files.getAttribute(dir.resolve("ca-key.pem"), "unix:gid");
        assertThatThrownBy(() -> CertificateAuthority.fromCacerts(dir, SETTINGS))
                .hasMessage(dir.resolve("ca-key.pem") + " may be used by others (mode 0644, owner " + uid + ", group "
                        + gid + "); chmod 600 it, or in Kubernetes mount its Secret with defaultMode 0400 and the "
                        + "pod's fsGroup");

        write(intermediate, List.of(intermediate.cert(), root.cert()), root.cert());
        Files.writeString(dir.resolve("ca-key.pem"), Pem.encode(root.key()));
        assertThatThrownBy(() -> CertificateAuthority.fromCacerts(dir, SETTINGS)).hasMessageContaining(
                dir.resolve("ca-key.pem") + " is not the key of certificate");

        TestCerts.Issuer otherRoot = TestCerts.rootCa("other root", now.minusSeconds(60), now.plus(Duration.ofDays(9)));
        write(intermediate, List.of(intermediate.cert(), root.cert()), otherRoot.cert());
        assertThatThrownBy(() -> CertificateAuthority.fromCacerts(dir, SETTINGS)).hasMessage(dir.resolve(
                "cert-chain.pem") + " does not end at root-cert.pem: its last certificate (CN=corp root) is neither "
                + "root-cert.pem nor signed by it");

        TestCerts.Issuer notCa = TestCerts.leaf(root, List.of("spiffe://example.org/ns/a/sa/b"), false,
                now.minusSeconds(60), now.plus(Duration.ofDays(9)));
        write(notCa, List.of(notCa.cert(), root.cert()), root.cert());
        assertThatThrownBy(() -> CertificateAuthority.fromCacerts(dir, SETTINGS)).hasMessageStartingWith(
                dir.resolve("ca-cert.pem") + " is not a CA certificate");

        TestCerts.Issuer expired = TestCerts.intermediate(root, "old intermediate", now.minus(Duration.ofDays(9)),
                now.minus(Duration.ofDays(1)));
        write(expired, List.of(expired.cert(), root.cert()), root.cert());
        assertThatThrownBy(() -> CertificateAuthority.fromCacerts(dir, SETTINGS)).hasMessageStartingWith(dir
                + ": ca-cert.pem (CN=old intermediate) expired on ");

        write(intermediate, List.of(root.cert()), root.cert());
        assertThatThrownBy(() -> CertificateAuthority.fromCacerts(dir, SETTINGS)).hasMessageStartingWith(
                dir.resolve("cert-chain.pem") + " does not start with ca-cert.pem");
    }
}
