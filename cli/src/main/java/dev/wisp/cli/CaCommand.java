package dev.wisp.cli;

import dev.wisp.spiffe.InvalidSpiffeIdException;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.spiffe.ca.SigningRefusedException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code wisp ca}: the mesh's certificate authority from the command line. {@code init} creates a CA
 * directory (a fresh root, its key mode 0600); {@code issue} signs a workload certificate from it
 * and writes {@code cert.pem}, {@code key.pem} (0600) and {@code bundle.pem}.
 */
@Command(name = "ca", mixinStandardHelpOptions = true, usageHelpAutoWidth = true, description = {
        "Manage the mesh's certificate authority.", "",
        "The CA signs ECDSA P-256 workload certificates (X.509-SVIDs) whose only",
        "URI SAN is a SPIFFE ID:", "", "  spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>", "",
        "Its directory holds the root certificate and key (mode 0600), the trust",
        "bundle, and the settings given to 'init'.", ""}, subcommands = {CaCommand.Init.class,
                CaCommand.Issue.class, CaRotateCommand.class}, footer = {"", "Example:",
                        "  wisp ca init --dir ./ca --trust-domain cluster.local",
                        "  wisp ca issue --dir ./ca --id spiffe://cluster.local/ns/shop/sa/cart \\",
                        "      --ttl 1h --out ./cart"})
public final class CaCommand {
    private CaCommand() {}

    /** What both subcommands share: the CA directory they work on. */
    abstract static class OnCaDirectory implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = "--dir", required = true, paramLabel = "DIR", description = "The CA directory ('init' creates it with mode 0700).")
        Path dir;

        /** Reads option {@code option}'s SPIFFE value (a {@code what}); a refusal is one line naming the option. */
        static <T> T spiffeValue(String option, String what, Supplier<T> parse) {
            try {
                return parse.get();
            } catch (InvalidSpiffeIdException e) {
                throw new UserException(option + ": " + e.getMessage().replace("invalid SPIFFE ID", "invalid " + what));
            }
        }
    }

    /** {@code wisp ca init}. */
    @Command(name = "init", mixinStandardHelpOptions = true, usageHelpAutoWidth = true, description = {
            "Create a CA: a new ECDSA P-256 root for a trust domain.", "",
            "Writes root-cert.pem, root-key.pem (0600), bundle.pem and ca.properties",
            "into DIR, which is created with mode 0700. If DIR already holds a CA for",
            "the same trust domain, it is kept unchanged.", ""})
    static final class Init extends OnCaDirectory {
        @Option(names = "--trust-domain", required = true, paramLabel = "DOMAIN", description = "Trust domain, e.g. cluster.local (a-z, 0-9, '.', '-', '_').")
        String trustDomain;

        @Option(names = "--max-ttl", paramLabel = "DURATION", defaultValue = "90d", converter = DurationConverter.class, description = "Longest lifetime the CA will issue (default: ${DEFAULT-VALUE}).")
        Duration maxTtl;

        @Option(names = "--default-ttl", paramLabel = "DURATION", defaultValue = "24h", converter = DurationConverter.class, description = "Lifetime when a request names none (default: ${DEFAULT-VALUE}).")
        Duration defaultTtl;

        @Override
        public Integer call() throws IOException {
            String td = spiffeValue("--trust-domain", "trust domain", () -> SpiffeId.requireTrustDomain(trustDomain));
            if (defaultTtl.compareTo(maxTtl) > 0) {
                throw new UserException("--default-ttl " + DurationConverter.format(defaultTtl)
                        + " exceeds --max-ttl " + DurationConverter.format(maxTtl));
            }
            if (Files.exists(dir.resolve("root-key.pem"))) {
                // Re-running init is harmless (scripts may): keep the CA if it is for this trust domain.
                CertificateAuthority existing;
                try {
                    existing = CertificateAuthority.open(dir, NodeAuthorizer.unrestricted());
                } catch (IllegalArgumentException e) {
                    throw new UserException("--dir: " + e.getMessage());
                }
                if (!existing.trustDomain().equals(td)) {
                    throw new UserException(dir + " already holds a CA for trust domain " + existing.trustDomain()
                            + ", not " + td + "; choose another directory");
                }
                spec.commandLine().getOut().printf("kept the existing CA for trust domain %s in %s (root serial %s)%n",
                        td, dir, existing.signingCertificate().getSerialNumber().toString(16));
                spec.commandLine().getOut().flush();
                return 0;
            }
            CaSettings settings = CaSettings.of(td, NodeAuthorizer.unrestricted()).withMaxTtl(maxTtl)
                    .withDefaultTtl(defaultTtl);
            CertificateAuthority ca = CertificateAuthority.createOrLoad(dir, settings);
            spec.commandLine().getOut().printf("created CA for trust domain %s in %s (root serial %s, max TTL %s)%n",
                    td, dir, ca.signingCertificate().getSerialNumber().toString(16), DurationConverter.format(maxTtl));
            spec.commandLine().getOut().flush();
            return 0;
        }
    }

    /** {@code wisp ca issue}. */
    @Command(name = "issue", mixinStandardHelpOptions = true, usageHelpAutoWidth = true, description = {
            "Issue a workload certificate (X.509-SVID) from a CA directory.", "",
            "Generates an ECDSA P-256 key and a certificate whose only URI SAN is the",
            "given SPIFFE ID, and writes cert.pem, key.pem (0600) and bundle.pem.", ""})
    static final class Issue extends OnCaDirectory {
        @Option(names = "--id", required = true, paramLabel = "SPIFFE_ID", description = "The SPIFFE ID to issue: spiffe://<td>/ns/<ns>/sa/<sa>")
        String id;

        @Option(names = "--ttl", paramLabel = "DURATION", converter = DurationConverter.class, description = "Lifetime, e.g. 30m, 1h, 7d (default: the CA's default, 24h unless set at init).")
        Duration ttl;

        @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write cert.pem, key.pem and bundle.pem into (created if missing).")
        Path out;

        @Override
        public Integer call() throws IOException {
            SpiffeId spiffeId = spiffeValue("--id", "SPIFFE ID", () -> SpiffeId.parse(id));
            if (!Files.isDirectory(dir)) {
                throw new UserException("--dir: no CA directory " + dir + "; create one with 'wisp ca init --dir " + dir
                        + " --trust-domain " + spiffeId.trustDomain() + "'");
            }
            CertificateAuthority ca;
            try {
                ca = CertificateAuthority.open(dir, NodeAuthorizer.unrestricted());
            } catch (IllegalArgumentException e) {
                throw new UserException("--dir: " + e.getMessage());
            }
            Duration max = ca.settings().maxTtl();
            if (ttl != null && ttl.compareTo(max) > 0) {
                throw new UserException("--ttl " + DurationConverter.format(ttl) + " exceeds the CA's maximum of "
                        + DurationConverter.format(max) + " (set by 'wisp ca init --max-ttl')");
            }
            X509Svid svid;
            try {
                svid = ca.issue(spiffeId, ttl, "wisp-cli");
            } catch (SigningRefusedException e) {
                throw new UserException(e.getMessage());
            }
            Files.createDirectories(out);
            svid.writePem(out.resolve("cert.pem"), out.resolve("key.pem"));
            ca.bundle().write(out.resolve("bundle.pem"));
            spec.commandLine().getOut().printf("issued %s (serial %s, valid until %s) into %s%n", spiffeId,
                    svid.leaf().getSerialNumber().toString(16), svid.notAfter(), out);
            spec.commandLine().getOut().flush();
            return 0;
        }
    }

    /** Durations as operators write them: 45s, 30m, 1h, 90d, or ISO-8601 (PT1H). */
    public static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            String v = value.trim().toLowerCase(Locale.ROOT);
            Duration d;
            try {
                if (v.startsWith("p")) {
                    d = Duration.parse(value.trim().toUpperCase(Locale.ROOT));
                } else if (v.matches("\\d{1,9}[smhd]")) {
                    long n = Long.parseLong(v.substring(0, v.length() - 1));
                    d = switch (v.charAt(v.length() - 1)) {
                        case 's' -> Duration.ofSeconds(n);
                        case 'm' -> Duration.ofMinutes(n);
                        case 'h' -> Duration.ofHours(n);
                        default -> Duration.ofDays(n);
                    };
                } else {
                    throw new CommandLine.TypeConversionException(
                            "'" + value + "' is not a duration (use e.g. 45s, 30m, 1h, 90d)");
                }
            } catch (DateTimeParseException e) {
                throw new CommandLine.TypeConversionException(
                        "'" + value + "' is not a duration (use e.g. 45s, 30m, 1h, 90d)");
            }
            if (d.isZero() || d.isNegative()) {
                throw new CommandLine.TypeConversionException("'" + value + "' must be positive");
            }
            return d;
        }

        public static String format(Duration d) {
            long s = d.toSeconds();
            if (s % 86400 == 0) {
                return s / 86400 + "d";
            }
            if (s % 3600 == 0) {
                return s / 3600 + "h";
            }
            if (s % 60 == 0) {
                return s / 60 + "m";
            }
            return s + "s";
        }
    }
}
