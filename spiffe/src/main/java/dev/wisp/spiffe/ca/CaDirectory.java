package dev.wisp.spiffe.ca;

import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.internal.Pem;
import dev.wisp.spiffe.internal.SecureFiles;
import dev.wisp.spiffe.internal.X509;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The on-disk form of a CA. A directory holds {@code ca.properties} (trust domain, lifetimes),
 * {@code root-cert.pem} and {@code root-key.pem} (the signing root; key 0600), {@code bundle.pem}
 * (every trusted root) and, between the first two rotation steps, {@code next-root-cert.pem} and
 * {@code next-root-key.pem}. Every write is atomic (temp file + rename).
 */
final class CaDirectory implements DefaultCertificateAuthority.Storage {
    private static final Logger log = LoggerFactory.getLogger(CaDirectory.class);
    static final String PROPERTIES = "ca.properties";
    static final String ROOT_CERT = "root-cert.pem";
    static final String ROOT_KEY = "root-key.pem";
    static final String BUNDLE = "bundle.pem";
    static final String NEXT_CERT = "next-root-cert.pem";
    static final String NEXT_KEY = "next-root-key.pem";

    static final DefaultCertificateAuthority.Storage NO_STORAGE = state -> {};

    private final Path dir;

    private CaDirectory(Path dir) {
        this.dir = dir;
    }

    static CertificateAuthority createOrLoad(Path dir, CaSettings settings) throws IOException {
        if (Files.exists(dir.resolve(ROOT_KEY))) {
            CaSettings stored = readSettings(dir, settings.authorizer(), settings.clock());
            if (!stored.trustDomain().equals(settings.trustDomain())) {
                throw new IllegalArgumentException("the CA in " + dir + " is for trust domain " + stored.trustDomain()
                        + ", not " + settings.trustDomain() + "; use another directory for another trust domain");
            }
            return load(dir, settings);
        }
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        CaDirectory storage = new CaDirectory(dir);
        DefaultCertificateAuthority ca = DefaultCertificateAuthority.generate(settings, storage);
        Properties p = new Properties();
        p.setProperty("trust-domain", settings.trustDomain());
        p.setProperty("default-ttl", settings.defaultTtl().toString());
        p.setProperty("max-ttl", settings.maxTtl().toString());
        StringWriter text = new StringWriter();
        p.store(text, "Wisp CA settings");
        SecureFiles.writePublic(dir.resolve(PROPERTIES), text.toString());
        // The key and certificate are written by the first save.
        storage.save(new DefaultCertificateAuthority.State(ca.signingCertificate(), keyOf(ca), List.of(),
                ca.signingCertificate(), ca.bundle(), null, null));
        log.info("created a CA for trust domain {} in {}", settings.trustDomain(), dir);
        return ca;
    }

    static CertificateAuthority open(Path dir, NodeAuthorizer authorizer) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("no CA directory " + dir + ": create one with 'wisp ca init'");
        }
        if (!Files.exists(dir.resolve(ROOT_KEY)) || !Files.exists(dir.resolve(PROPERTIES))) {
            throw new IllegalArgumentException(
                    dir + " holds no CA (no " + ROOT_KEY + " or " + PROPERTIES + "): create one with 'wisp ca init'");
        }
        return load(dir, readSettings(dir, authorizer, java.time.Clock.systemUTC()));
    }

    /** The settings stored at creation, with the given authorizer and clock (they are not stored). */
    private static CaSettings readSettings(Path dir, NodeAuthorizer authorizer, java.time.Clock clock)
            throws IOException {
        Properties p = new Properties();
        try (StringReader in = new StringReader(Files.readString(dir.resolve(PROPERTIES), StandardCharsets.UTF_8))) {
            p.load(in);
        }
        String td = p.getProperty("trust-domain");
        if (td == null) {
            throw new IllegalArgumentException(dir.resolve(PROPERTIES) + " names no trust-domain");
        }
        try {
            return new CaSettings(td, Duration.parse(p.getProperty("default-ttl", "PT24H")),
                    Duration.parse(p.getProperty("max-ttl", "P90D")), authorizer, clock);
        } catch (java.time.format.DateTimeParseException e) {
            throw new IllegalArgumentException(dir.resolve(PROPERTIES) + ": unreadable lifetime: " + e.getMessage(), e);
        }
    }

    private static CertificateAuthority load(Path dir, CaSettings settings) throws IOException {
        warnIfKeyReadableByOthers(dir.resolve(ROOT_KEY));
        X509Certificate root = Pem.certificates(read(dir.resolve(ROOT_CERT)), dir.resolve(ROOT_CERT).toString())
                .get(0);
        PrivateKey key = Pem.privateKey(read(dir.resolve(ROOT_KEY)), dir.resolve(ROOT_KEY).toString());
        requireKeyMatches(root, key, dir.resolve(ROOT_KEY).toString());
        TrustBundle bundle = Files.exists(dir.resolve(BUNDLE))
                ? TrustBundle.read(settings.trustDomain(), dir.resolve(BUNDLE))
                : TrustBundle.of(settings.trustDomain(), root);
        X509Certificate next = null;
        PrivateKey nextKey = null;
        if (Files.exists(dir.resolve(NEXT_CERT)) && Files.exists(dir.resolve(NEXT_KEY))) {
            next = Pem.certificates(read(dir.resolve(NEXT_CERT)), NEXT_CERT).get(0);
            nextKey = Pem.privateKey(read(dir.resolve(NEXT_KEY)), NEXT_KEY);
            requireKeyMatches(next, nextKey, dir.resolve(NEXT_KEY).toString());
        }
        DefaultCertificateAuthority.State state = new DefaultCertificateAuthority.State(root, key, List.of(), root,
                bundle.withRoot(root), next, nextKey);
        return new DefaultCertificateAuthority(settings, state, new CaDirectory(dir));
    }

    static CertificateAuthority pluggedIn(Path chainFile, Path keyFile, CaSettings settings) throws IOException {
        return pluggedIn(Pem.certificates(read(chainFile), chainFile.toString()),
                Pem.privateKey(read(keyFile), keyFile.toString()), chainFile.toString(), keyFile.toString(), settings);
    }

    /**
     * A plug-in CA from {@code chain} (the signing certificate first, ending with its self-signed
     * root) and the signer's {@code key}; errors name {@code chainName} and {@code keyName}.
     */
    static CertificateAuthority pluggedIn(List<X509Certificate> chain, PrivateKey key, String chainName,
            String keyName, CaSettings settings) {
        X509Certificate signer = chain.get(0);
        requireKeyMatches(signer, key, keyName);
        if (signer.getBasicConstraints() < 0 || signer.getKeyUsage() == null || !signer.getKeyUsage()[5]) {
            throw new IllegalArgumentException(chainName + ": the first certificate is not a CA certificate "
                    + "(it needs basicConstraints CA:true and keyUsage keyCertSign)");
        }
        X509Certificate root = chain.get(chain.size() - 1);
        if (!X509.isSelfSigned(root)) {
            throw new IllegalArgumentException(chainName + ": the chain must end with its self-signed root");
        }
        for (int i = 0; i + 1 < chain.size(); i++) {
            try {
                chain.get(i).verify(chain.get(i + 1).getPublicKey());
            } catch (GeneralSecurityException e) {
                throw new IllegalArgumentException(chainName + ": certificate " + (i + 1)
                        + " is not signed by the certificate after it; list the chain from the signer up to the root",
                        e);
            }
        }
        List<X509Certificate> intermediates = chain.size() == 1 ? List.of() : chain.subList(0, chain.size() - 1);
        DefaultCertificateAuthority.State state = new DefaultCertificateAuthority.State(signer, key, intermediates,
                root, TrustBundle.of(settings.trustDomain(), root), null, null);
        return new DefaultCertificateAuthority(settings, state, NO_STORAGE);
    }

    @Override
    public void save(DefaultCertificateAuthority.State state) throws IOException {
        if (state.nextRoot() != null) {
            SecureFiles.writeSecret(dir.resolve(NEXT_KEY), Pem.encode(state.nextKey()));
            SecureFiles.writePublic(dir.resolve(NEXT_CERT), Pem.encode(state.nextRoot()));
        }
        SecureFiles.writePublic(dir.resolve(BUNDLE), state.bundle().toPem());
        SecureFiles.writeSecret(dir.resolve(ROOT_KEY), Pem.encode(state.signerKey()));
        SecureFiles.writePublic(dir.resolve(ROOT_CERT), Pem.encode(state.signer()));
        if (state.nextRoot() == null) {
            Files.deleteIfExists(dir.resolve(NEXT_KEY));
            Files.deleteIfExists(dir.resolve(NEXT_CERT));
        }
    }

    private static PrivateKey keyOf(DefaultCertificateAuthority ca) {
        return ca.signerKey();
    }

    static String read(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("missing file " + file);
        }
        return Files.readString(file, StandardCharsets.US_ASCII);
    }

    private static void warnIfKeyReadableByOthers(Path key) throws IOException {
        Set<PosixFilePermission> perms = Files.getPosixFilePermissions(key);
        if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)) {
            log.warn("{} is readable by group or others (mode {}); run: chmod 600 {}", key,
                    PosixFilePermissions.toString(perms), key);
        }
    }

    /** Proves that {@code key} is the private half of {@code cert}'s public key. */
    static void requireKeyMatches(X509Certificate cert, PrivateKey key, String what) {
        String algorithm = switch (key.getAlgorithm()) {
            case "EC", "ECDSA" -> "SHA256withECDSA";
            case "RSA" -> "SHA256withRSA";
            default -> throw new IllegalArgumentException(what + ": unsupported key algorithm " + key.getAlgorithm());
        };
        byte[] probe = new byte[32];
        new SecureRandom().nextBytes(probe);
        try {
            Signature signer = Signature.getInstance(algorithm);
            signer.initSign(key);
            signer.update(probe);
            byte[] signature = signer.sign();
            Signature verifier = Signature.getInstance(algorithm);
            verifier.initVerify(cert.getPublicKey());
            verifier.update(probe);
            if (!verifier.verify(signature)) {
                throw new IllegalArgumentException(what + " is not the key of certificate "
                        + cert.getSubjectX500Principal().getName());
            }
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException(what + " does not match its certificate: " + e.getMessage(), e);
        }
    }
}
