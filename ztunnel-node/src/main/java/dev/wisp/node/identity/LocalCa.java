package dev.wisp.node.identity;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A mesh CA held by the agent itself, for standalone mode and tests: it signs ECDSA P-256 SVIDs
 * (24 h, URI SAN = the SPIFFE ID) for any identity asked, caches them and re-issues at half-life.
 * In a cluster the control plane's CA signs instead (with node authorization); this class exists
 * so that an agent and its tests run without one.
 *
 * <p>{@link #open} keeps the root in a directory: {@code ca.pem} and {@code ca-key.pem} (0600),
 * created when absent, so several agents (one per test node) share one trust domain.
 */
public final class LocalCa implements IdentityProvider {
    private static final Duration TTL = Duration.ofHours(24);
    private final String trustDomain;
    private final X509Certificate root;
    private final PrivateKey rootKey;
    /** Identity → current SVID; replaced after half-life. Thread-safe map, values immutable. */
    private final Map<String, Svid> issued = new ConcurrentHashMap<>();
    private final SecureRandom random = new SecureRandom();

    private LocalCa(String trustDomain, X509Certificate root, PrivateKey rootKey) {
        this.trustDomain = trustDomain;
        this.root = root;
        this.rootKey = rootKey;
    }

    /** A fresh in-memory CA for {@code trustDomain}. */
    public static LocalCa generate(String trustDomain) throws IdentityException {
        requireNonNull(trustDomain, "trustDomain");
        try {
            KeyPair kp = ecKeyPair();
            Instant now = Instant.now();
            X500Name subject = new X500Name("O=wisp,CN=wisp local CA " + trustDomain);
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(subject, serial(new SecureRandom()),
                    Date.from(now.minusSeconds(60)), Date.from(now.plus(Duration.ofDays(3650))), subject,
                    kp.getPublic());
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
            b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            b.addExtension(Extension.subjectAlternativeName, false,
                    new GeneralNames(
                            new GeneralName(GeneralName.uniformResourceIdentifier, "spiffe://" + trustDomain)));
            X509Certificate cert = sign(b, kp.getPrivate());
            return new LocalCa(trustDomain, cert, kp.getPrivate());
        } catch (GeneralSecurityException | IOException | org.bouncycastle.operator.OperatorCreationException e) {
            throw new IdentityException("cannot create a local CA for trust domain " + trustDomain, e);
        }
    }

    /** The CA kept in {@code dir} (created there, key 0600, when absent). */
    public static LocalCa open(Path dir, String trustDomain) throws IdentityException {
        requireNonNull(dir, "dir");
        Path certFile = dir.resolve("ca.pem");
        Path keyFile = dir.resolve("ca-key.pem");
        try {
            if (!Files.exists(certFile)) {
                LocalCa ca = generate(trustDomain);
                Files.createDirectories(dir);
                Files.writeString(keyFile, "", StandardOpenOption.CREATE_NEW);
                Files.setPosixFilePermissions(keyFile, PosixFilePermissions.fromString("rw-------"));
                Files.writeString(keyFile, pem(ca.rootKey));
                Files.writeString(certFile, pem(ca.root));
                return ca;
            }
            X509Certificate cert;
            PrivateKey key;
            try (PEMParser p = new PEMParser(new StringReader(Files.readString(certFile)))) {
                cert = new JcaX509CertificateConverter().getCertificate((X509CertificateHolder) p.readObject());
            }
            try (PEMParser p = new PEMParser(new StringReader(Files.readString(keyFile)))) {
                Object o = p.readObject();
                JcaPEMKeyConverter conv = new JcaPEMKeyConverter();
                key = o instanceof PEMKeyPair kp
                        ? conv.getKeyPair(kp).getPrivate()
                        : conv.getPrivateKey((PrivateKeyInfo) o);
            }
            return new LocalCa(trustDomain, cert, key);
        } catch (IOException | GeneralSecurityException | ClassCastException e) {
            throw new IdentityException("cannot read the local CA in " + dir
                    + " (ca.pem, ca-key.pem); remove the directory to create a new CA", e);
        }
    }

    @Override
    public String trustDomain() {
        return trustDomain;
    }

    @Override
    public List<X509Certificate> trustAnchors() {
        return List.of(root);
    }

    /** The root certificate. */
    public X509Certificate root() {
        return root;
    }

    @Override
    public Svid svid(String spiffeId) throws IdentityException {
        requireNonNull(spiffeId, "spiffeId");
        Svid current = issued.get(spiffeId);
        if (current != null && Instant.now().isBefore(current.renewAt())) {
            return current;
        }
        Svid fresh = issue(spiffeId, TTL);
        issued.put(spiffeId, fresh);
        return fresh;
    }

    /** Signs a new SVID for {@code spiffeId} valid for {@code ttl}. */
    public Svid issue(String spiffeId, Duration ttl) throws IdentityException {
        if (!spiffeId.startsWith("spiffe://" + trustDomain + "/")) {
            throw new IdentityException("local CA of trust domain " + trustDomain + " refuses to sign " + spiffeId,
                    null);
        }
        try {
            KeyPair kp = ecKeyPair();
            Instant now = Instant.now();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(
                    X500Name.getInstance(root.getSubjectX500Principal().getEncoded()), serial(random),
                    Date.from(now.minusSeconds(60)), Date.from(now.plus(ttl)), new X500Name("O=wisp"), kp.getPublic());
            b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            b.addExtension(Extension.keyUsage, true,
                    new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment | KeyUsage.keyAgreement));
            b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(
                    new KeyPurposeId[]{KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
            b.addExtension(Extension.subjectAlternativeName, true,
                    new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, spiffeId)));
            return new Svid(spiffeId, kp.getPrivate(), List.of(sign(b, rootKey)));
        } catch (GeneralSecurityException | IOException | org.bouncycastle.operator.OperatorCreationException e) {
            throw new IdentityException("cannot sign an SVID for " + spiffeId, e);
        }
    }

    private static KeyPair ecKeyPair() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    private static BigInteger serial(SecureRandom random) {
        return new BigInteger(127, random).add(BigInteger.ONE);
    }

    private static X509Certificate sign(X509v3CertificateBuilder b, PrivateKey key)
            throws GeneralSecurityException, org.bouncycastle.operator.OperatorCreationException {
        return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA")
                .build(key)));
    }

    private static String pem(Object o) throws IOException {
        StringWriter w = new StringWriter();
        try (JcaPEMWriter p = new JcaPEMWriter(w)) {
            p.writeObject(o);
        }
        return w.toString();
    }
}
