package dev.wisp.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.interfaces.ECPrivateKey;
import java.security.spec.ECGenParameterSpec;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The secret scan finds each planted secret in each form, and stays quiet on clean text. */
class SecretScanTest {
    static KeyPair pair;
    static SecretScan scan;
    static byte[] scalar;
    static final String TOKEN = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs=";

    @BeforeAll
    static void keys() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        pair = g.generateKeyPair();
        byte[] s = ((ECPrivateKey) pair.getPrivate()).getS().toByteArray();
        scalar = java.util.Arrays.copyOfRange(s, s.length - 32, s.length);
        scan = SecretScan.empty().key("ca key", pair.getPrivate()).text("node token", TOKEN);
    }

    @Test
    void aPemPrivateKeyBlockIsFoundWhoeverItsKeyIs() {
        String pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----";
        assertThat(SecretScan.empty().scanText("log", "12:00 DEBUG loaded " + pem)).extracting(
                SecretScan.Finding::what).containsExactly("PEM private key block");
        assertThat(SecretScan.empty().scanText("log", "-----BEGIN EC PRIVATE KEY-----")).hasSize(1);
        assertThat(SecretScan.empty().scanText("log", "-----BEGIN CERTIFICATE-----\nMIIB\n")).isEmpty();
    }

    @Test
    void theKeyIsFoundInsideItsOwnPemBodyAtAnyAlignment() {
        // A PEM body is base64 of PKCS#8 DER with the scalar at some offset: found without the header.
        String body = Base64.getEncoder().encodeToString(pair.getPrivate().getEncoded());
        assertThat(scan.scanText("dump", "key=" + body)).extracting(SecretScan.Finding::what).contains(
                "ca key (PKCS#8) in base64", "ca key (raw scalar) in base64");
        for (int prefix = 0; prefix < 3; prefix++) {
            byte[] blob = new byte[prefix + 32 + 5];
            new Random(prefix).nextBytes(blob);
            System.arraycopy(scalar, 0, blob, prefix, 32);
            String enc = Base64.getEncoder().encodeToString(blob);
            assertThat(scan.scanText("blob", enc)).as("scalar at byte offset " + prefix).extracting(
                    SecretScan.Finding::what).contains("ca key (raw scalar) in base64");
            String url = Base64.getUrlEncoder().encodeToString(blob);
            assertThat(scan.scanText("blob", url)).as("url alphabet, offset " + prefix).isNotEmpty();
        }
    }

    @Test
    void rawHexAndTokenFormsAreFound() {
        assertThat(scan.scanText("log", "s=" + HexFormat.of().formatHex(scalar))).extracting(
                SecretScan.Finding::what).containsExactly("ca key (raw scalar) in hex");
        assertThat(scan.scanText("log", HexFormat.of().withUpperCase().formatHex(scalar))).hasSize(1);
        assertThat(scan.scanText("bin", "xx" + new String(scalar, StandardCharsets.ISO_8859_1))).extracting(
                SecretScan.Finding::what).containsExactly("ca key (raw scalar) as raw bytes");
        assertThat(scan.scanText("log", "authorization: Bearer " + TOKEN)).extracting(SecretScan.Finding::what)
                .contains("node token");
        assertThat(scan.scanText("log", "token digest " + HexFormat.of().formatHex(TOKEN.getBytes(
                StandardCharsets.UTF_8)))).extracting(SecretScan.Finding::what).contains("node token in hex");
    }

    @Test
    void cleanTextHasNoFinding() {
        assertThat(scan.scanText("log", "12:00 INFO connection complete src.identity=\"spiffe://cluster.local/ns/"
                + "default/sa/client\" " + Base64.getEncoder().encodeToString(new byte[64]))).isEmpty();
    }

    @Test
    void aSecretFileIsAFindingOnlyWhenOthersMayReadIt(@TempDir Path dir) throws Exception {
        Path key = dir.resolve("state").resolve("root-key.pem");
        Files.createDirectories(key.getParent());
        String pem = "-----BEGIN PRIVATE KEY-----\n" + Base64.getMimeEncoder().encodeToString(pair.getPrivate()
                .getEncoded()) + "\n-----END PRIVATE KEY-----\n";
        Files.writeString(key, pem);
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
        Files.writeString(dir.resolve("app.log"), "nothing to see\n");
        Files.setPosixFilePermissions(dir.resolve("app.log"), PosixFilePermissions.fromString("rw-r--r--"));
        assertThat(scan.scanFiles(dir)).as("0600 key, clean 0644 log").isEmpty();

        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-r--r--"));
        assertThat(scan.scanFiles(dir)).isNotEmpty().allSatisfy(f -> {
            assertThat(f.where()).isEqualTo(key.toString());
            assertThat(f.what()).endsWith("in a file of mode rw-r--r-- (readable by others)");
        });
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-r-----"));
        assertThat(scan.scanFiles(dir)).as("group-readable").isNotEmpty();

        Path wg = dir.resolve("wg.key");
        Files.writeString(wg, TOKEN + "\n");
        assertThat(scan.scanFiles(dir)).extracting(SecretScan.Finding::where).contains(wg.toString());
    }

    @Test
    void secretsTooShortToFindReliablyAreRefused() {
        assertThatThrownBy(() -> SecretScan.empty().bytes("short", new byte[8])).hasMessageContaining(
                "secret short has 8 bytes");
    }
}
