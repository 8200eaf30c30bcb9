package dev.wisp.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.cli.WispTest.Run;
import dev.wisp.testing.Prerequisites;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code wisp ca init} and {@code wisp ca issue}, driven through {@link Wisp#commandLine()}. */
class CaCommandTest {
    @TempDir
    Path tmp;

    @Test
    void initThenIssueWritesCertKeyAndBundleThatOpensslAccepts() throws Exception {
        Path ca = tmp.resolve("ca");
        Run init = WispTest.run("ca", "init", "--dir", ca.toString(), "--trust-domain", "cluster.local");
        assertThat(init.exit()).as(init.err()).isZero();
        assertThat(init.out()).startsWith("created CA for trust domain cluster.local in " + ca);
        assertThat(mode(ca.resolve("root-key.pem"))).isEqualTo("rw-------");

        Path out = tmp.resolve("cart");
        Instant before = Instant.now();
        Run issue = WispTest.run("ca", "issue", "--dir", ca.toString(), "--id",
                "spiffe://cluster.local/ns/shop/sa/cart", "--ttl", "1h", "--out", out.toString());
        assertThat(issue.exit()).as(issue.err()).isZero();
        assertThat(issue.out()).startsWith("issued spiffe://cluster.local/ns/shop/sa/cart (serial ");
        assertThat(mode(out.resolve("key.pem"))).isEqualTo("rw-------");
        assertThat(mode(out.resolve("cert.pem"))).isEqualTo("rw-r--r--");
        assertThat(Files.readString(out.resolve("bundle.pem"))).isEqualTo(Files.readString(ca.resolve("bundle.pem")));

        X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(Files.newInputStream(out.resolve("cert.pem")));
        assertThat(cert.getNotAfter().toInstant()).isBetween(before.plus(Duration.ofMinutes(59)),
                Instant.now().plus(Duration.ofHours(1)));

        Path openssl = Prerequisites.requireCommands("openssl").get(0);
        Process verify = new ProcessBuilder(openssl.toString(), "verify", "-CAfile",
                out.resolve("bundle.pem").toString(),
                out.resolve("cert.pem").toString()).redirectErrorStream(true).start();
        String said = new String(verify.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(verify.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(said).contains(": OK");
        assertThat(verify.exitValue()).isZero();
    }

    @Test
    void issueRefusesBadInputWithOneLineAndNonZeroExit() {
        Path ca = tmp.resolve("ca");
        assertThat(WispTest.run("ca", "init", "--dir", ca.toString(), "--trust-domain", "example.org", "--max-ttl",
                "48h").exit()).isZero();
        String out = tmp.resolve("out").toString();

        Run badId = WispTest.run("ca", "issue", "--dir", ca.toString(), "--id", "spiffe://example.org/ns//sa/x",
                "--out", out);
        assertThat(badId.exit()).isEqualTo(1);
        assertThat(badId.err().strip()).isEqualTo(
                "error: --id: invalid SPIFFE ID 'spiffe://example.org/ns//sa/x': the path has an empty segment ('//')");

        Run tooLong = WispTest.run("ca", "issue", "--dir", ca.toString(), "--id",
                "spiffe://example.org/ns/a/sa/b", "--ttl", "3d", "--out", out);
        assertThat(tooLong.exit()).isEqualTo(1);
        assertThat(tooLong.err().strip()).isEqualTo(
                "error: --ttl 3d exceeds the CA's maximum of 2d (set by 'wisp ca init --max-ttl')");

        Run noCa = WispTest.run("ca", "issue", "--dir", tmp.resolve("missing").toString(), "--id",
                "spiffe://example.org/ns/a/sa/b", "--out", out);
        assertThat(noCa.exit()).isEqualTo(1);
        assertThat(noCa.err().strip()).startsWith("error: --dir: no CA directory ").contains("wisp ca init");

        Run foreign = WispTest.run("ca", "issue", "--dir", ca.toString(), "--id", "spiffe://other.org/ns/a/sa/b",
                "--out", out);
        assertThat(foreign.exit()).isEqualTo(1);
        assertThat(foreign.err()).contains("is in trust domain other.org; this CA signs only for example.org");

        Run badTtl = WispTest.run("ca", "issue", "--dir", ca.toString(), "--id", "spiffe://example.org/ns/a/sa/b",
                "--ttl", "soon", "--out", out);
        assertThat(badTtl.exit()).isEqualTo(2);
        assertThat(badTtl.err()).contains("'soon' is not a duration (use e.g. 45s, 30m, 1h, 90d)");

        assertThat(Files.exists(Path.of(out))).as("nothing written on refusal").isFalse();
    }

    @Test
    void initRefusesABadTrustDomainAndKeepsAnExistingCa() {
        Run bad = WispTest.run("ca", "init", "--dir", tmp.resolve("x").toString(), "--trust-domain", "Cluster.Local");
        assertThat(bad.exit()).isEqualTo(1);
        assertThat(bad.err().strip()).startsWith("error: --trust-domain: invalid trust domain 'Cluster.Local'")
                .contains("upper case is not allowed");

        Path ca = tmp.resolve("ca");
        assertThat(WispTest.run("ca", "init", "--dir", ca.toString(), "--trust-domain", "td").exit()).isZero();
        String root = read(ca.resolve("root-cert.pem"));
        Run again = WispTest.run("ca", "init", "--dir", ca.toString(), "--trust-domain", "td");
        assertThat(again.exit()).isZero();
        assertThat(again.out()).startsWith("kept the existing CA for trust domain td in " + ca);
        assertThat(read(ca.resolve("root-cert.pem"))).as("root unchanged").isEqualTo(root);
        Run other = WispTest.run("ca", "init", "--dir", ca.toString(), "--trust-domain", "other.td");
        assertThat(other.exit()).isEqualTo(1);
        assertThat(other.err().strip())
                .isEqualTo("error: " + ca
                        + " already holds a CA for trust domain td, not other.td; choose another directory");
    }

    @Test
    void helpExplainsTheCommands() {
        Run ca = WispTest.run("ca", "--help");
        assertThat(ca.exit()).isZero();
        assertThat(ca.out()).contains("Usage: wisp ca").contains("init").contains("issue")
                .contains("spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>");
        Run issue = WispTest.run("ca", "issue", "--help");
        assertThat(issue.out()).contains("--dir=DIR").contains("--id=SPIFFE_ID").contains("--ttl=DURATION")
                .contains("--out=DIR").contains("key.pem (0600)").contains("Issue a workload certificate (X.509-SVID)");
        assertThat(WispTest.run("--help").out()).contains("ca").contains("Manage the mesh's certificate authority");
        Run bare = WispTest.run("ca");
        assertThat(bare.exit()).isEqualTo(2);
        assertThat(bare.err()).contains("Missing required subcommand");
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String mode(Path p) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }
}
