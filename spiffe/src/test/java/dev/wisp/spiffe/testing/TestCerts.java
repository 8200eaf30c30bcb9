package dev.wisp.spiffe.testing;

import dev.wisp.spiffe.CertificateRequest;
import dev.wisp.spiffe.X509Svid;
import java.math.BigInteger;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Crafts certificates the CA would never issue (expired, self-signed, two URI SANs, CA:true leaves,
 * other trust domains), with Bouncy Castle, to prove the verifiers refuse them.
 */
public final class TestCerts {
    private static final AtomicLong SERIAL = new AtomicLong(1000);

    private TestCerts() {}

    /** A certificate and its key (a CA, or a leaf a misbehaving peer presents). */
    public record Issuer(X509Certificate cert, PrivateKey key) {}

    /** A self-signed CA certificate named {@code cn}. */
    public static Issuer rootCa(String cn, Instant notBefore, Instant notAfter) {
        KeyPair keys = CertificateRequest.newP256KeyPair();
        X509Certificate cert = build(new X500Name("CN=" + cn), new X500Name("CN=" + cn), keys, keys.getPrivate(),
                List.of(), true, notBefore, notAfter);
        return new Issuer(cert, keys.getPrivate());
    }

    /** A CA certificate named {@code cn} signed by {@code parent}. */
    public static Issuer intermediate(Issuer parent, String cn, Instant notBefore, Instant notAfter) {
        KeyPair keys = CertificateRequest.newP256KeyPair();
        X509Certificate cert = build(new X500Name("CN=" + cn),
                X500Name.getInstance(parent.cert().getSubjectX500Principal().getEncoded()), keys, parent.key(),
                List.of(), true, notBefore, notAfter);
        return new Issuer(cert, keys.getPrivate());
    }

    /**
     * A leaf with the given URI SANs. {@code issuer} null makes it self-signed; {@code ca} sets
     * basicConstraints CA:true.
     */
    public static Issuer leaf(Issuer issuer, List<String> uris, boolean ca, Instant notBefore, Instant notAfter) {
        KeyPair keys = CertificateRequest.newP256KeyPair();
        X500Name subject = new X500Name("CN=leaf-" + SERIAL.get());
        X500Name issuerName = issuer == null
                ? subject
                : X500Name.getInstance(issuer.cert().getSubjectX500Principal().getEncoded());
        PrivateKey signingKey = issuer == null ? keys.getPrivate() : issuer.key();
        X509Certificate cert = build(subject, issuerName, keys, signingKey, uris, ca, notBefore, notAfter);
        return new Issuer(cert, keys.getPrivate());
    }

    /** {@code leaf} as an SVID (it must have exactly one URI SAN). */
    public static X509Svid svid(Issuer leaf) {
        return X509Svid.fromPem(dev.wisp.spiffe.internal.Pem.encode(leaf.cert()),
                dev.wisp.spiffe.internal.Pem.encode(leaf.key()));
    }

    private static X509Certificate build(X500Name subject, X500Name issuer, KeyPair keys, PrivateKey signingKey,
            List<String> uris, boolean ca, Instant notBefore, Instant notAfter) {
        try {
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuer,
                    BigInteger.valueOf(SERIAL.incrementAndGet()), Date.from(notBefore), Date.from(notAfter), subject,
                    keys.getPublic()).addExtension(Extension.basicConstraints, true, new BasicConstraints(ca))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(ca
                            ? KeyUsage.keyCertSign | KeyUsage.cRLSign | KeyUsage.digitalSignature
                            : KeyUsage.digitalSignature));
            if (!uris.isEmpty()) {
                b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(uris.stream()
                        .map(u -> new GeneralName(GeneralName.uniformResourceIdentifier, u))
                        .toArray(GeneralName[]::new)));
            }
            return new JcaX509CertificateConverter()
                    .getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signingKey)));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
