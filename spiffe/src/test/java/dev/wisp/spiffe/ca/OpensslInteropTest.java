package dev.wisp.spiffe.ca;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.testing.Prerequisites;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The real openssl binary accepts what the CA issues and reads the SAN, key and lifetime we meant. */
class OpensslInteropTest {
    record Result(int exit, String output) {}

    static Result openssl(String... args) throws IOException, InterruptedException {
        Path openssl = Prerequisites.requireCommands("openssl").get(0);
        List<String> command = new java.util.ArrayList<>(List.of(openssl.toString()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).as("openssl finishes").isTrue();
        return new Result(p.exitValue(), out);
    }

    @Test
    void opensslVerifiesTheIssuedCertificateAndShowsUriSanP256KeyAndTtl(@TempDir Path dir) throws Exception {
        CertificateAuthority ca = CertificateAuthority.createOrLoad(dir.resolve("ca"),
                CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()));
        Instant issuedAt = Instant.now();
        X509Svid svid = ca.issue(SpiffeId.forServiceAccount("cluster.local", "shop", "cart"), Duration.ofHours(1),
                "node-1");
        svid.writePem(dir.resolve("cert.pem"), dir.resolve("key.pem"));
        ca.bundle().write(dir.resolve("bundle.pem"));

        Result verify = openssl("verify", "-CAfile", dir.resolve("bundle.pem").toString(),
                dir.resolve("cert.pem").toString());
        assertThat(verify.output()).contains(dir.resolve("cert.pem") + ": OK");
        assertThat(verify.exit()).isZero();

        Result text = openssl("x509", "-in", dir.resolve("cert.pem").toString(), "-noout", "-text");
        assertThat(text.exit()).isZero();
        assertThat(text.output()).contains("URI:spiffe://cluster.local/ns/shop/sa/cart")
                .contains("Public Key Algorithm: id-ecPublicKey").contains("Public-Key: (256 bit)")
                .contains("NIST CURVE: P-256").contains("CA:FALSE").contains("TLS Web Server Authentication")
                .contains("TLS Web Client Authentication").contains("Signature Algorithm: ecdsa-with-SHA256");
        assertThat(text.output()).containsOnlyOnce("URI:");

        Instant notBefore = date(text.output(), "Not Before");
        Instant notAfter = date(text.output(), "Not After");
        assertThat(Duration.between(notBefore, notAfter)).isEqualTo(Duration.ofMinutes(61));
        assertThat(Duration.between(issuedAt, notAfter)).isBetween(Duration.ofMinutes(59), Duration.ofMinutes(61));

        Result key = openssl("pkey", "-in", dir.resolve("key.pem").toString(), "-noout", "-text");
        assertThat(key.output()).contains("NIST CURVE: P-256");
        assertThat(Files.getPosixFilePermissions(dir.resolve("key.pem")))
                .containsExactlyInAnyOrder(java.nio.file.attribute.PosixFilePermission.OWNER_READ,
                        java.nio.file.attribute.PosixFilePermission.OWNER_WRITE);
    }

    @Test
    void opensslRefusesTheCertificateAgainstAnotherCasBundle(@TempDir Path dir) throws Exception {
        CertificateAuthority ca = CertificateAuthority
                .inMemory(CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()));
        CertificateAuthority other = CertificateAuthority
                .inMemory(CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()));
        ca.issue(SpiffeId.forServiceAccount("cluster.local", "a", "b"), null, "n").writePem(dir.resolve("cert.pem"),
                dir.resolve("key.pem"));
        other.bundle().write(dir.resolve("bundle.pem"));
        Result verify = openssl("verify", "-CAfile", dir.resolve("bundle.pem").toString(),
                dir.resolve("cert.pem").toString());
        assertThat(verify.exit()).isNotZero();
        assertThat(verify.output()).contains("unable to get local issuer certificate");
    }

    private static Instant date(String text, String label) {
        Matcher m = Pattern.compile(label + "\\s*:\\s*(\\w{3}\\s+\\d{1,2} \\d{2}:\\d{2}:\\d{2} \\d{4}) GMT")
                .matcher(text);
        assertThat(m.find()).as("%s in openssl output", label).isTrue();
        return ZonedDateTime.parse(m.group(1).replaceAll("\\s+", " ") + " GMT",
                DateTimeFormatter.ofPattern("MMM d HH:mm:ss yyyy z", Locale.ROOT)).toInstant();
    }
}
