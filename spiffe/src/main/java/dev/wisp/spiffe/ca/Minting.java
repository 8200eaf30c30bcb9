package dev.wisp.spiffe.ca;

import dev.wisp.spiffe.SpiffeId;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/** Builds the CA's certificates: self-signed roots and workload leaves. No I/O, no state. */
final class Minting {
    private static final SecureRandom RANDOM = new SecureRandom();

    /**
     * A new helper for each certificate: one holds a single SHA-1 digest, which is not thread-safe.
     * Shared by the control plane's concurrent signings it once mixed two certificates' bytes, so
     * that one leaf in a few hundred named a key identifier of no root (ConcurrentIssueTest).
     */
    private static JcaX509ExtensionUtils extensions() {
        try {
            return new JcaX509ExtensionUtils();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JDK has no SHA-1 for key identifiers", e);
        }
    }

    private Minting() {}

    /**
     * A self-signed ECDSA P-256 root for {@code trustDomain}. Its CN carries the creation time and
     * serial so that two roots of one trust domain (during rotation) never share a subject name.
     */
    static X509Certificate root(String trustDomain, KeyPair keys, Instant now, Duration validity) {
        BigInteger serial = serial();
        X500Name subject = new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, "Wisp")
                .addRDN(BCStyle.CN, "Wisp root CA " + trustDomain + " " + serial.toString(16).substring(0, 8))
                .build();
        try {
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject, serial,
                    Date.from(now.minus(BACKDATE)), Date.from(now.plus(validity)), subject, keys.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                    .addExtension(Extension.subjectKeyIdentifier, false,
                            extensions().createSubjectKeyIdentifier(keys.getPublic()))
                    .addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName(
                            GeneralName.uniformResourceIdentifier, SpiffeId.forTrustDomain(trustDomain).toString())));
            return convert(builder, keys.getPrivate());
        } catch (CertIOException e) {
            throw new IllegalStateException("cannot encode a root certificate", e);
        }
    }

    /** Clock skew allowance: certificates are valid from a minute before they are issued. */
    static final Duration BACKDATE = Duration.ofMinutes(1);

    /**
     * A workload certificate: empty subject, exactly one (critical) URI SAN, not a CA, usable for TLS
     * client and server authentication.
     */
    static X509Certificate leaf(SpiffeId id, PublicKey key, X509Certificate issuer, PrivateKey issuerKey,
            Instant notBefore, Instant notAfter) {
        JcaX509ExtensionUtils ids = extensions();
        try {
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
                    X500Name.getInstance(issuer.getSubjectX500Principal().getEncoded()), serial(),
                    Date.from(notBefore), Date.from(notAfter), new X500Name(new org.bouncycastle.asn1.x500.RDN[0]),
                    key)
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                    .addExtension(Extension.keyUsage, true,
                            new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment))
                    .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(
                            new KeyPurposeId[]{KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}))
                    .addExtension(Extension.subjectKeyIdentifier, false, ids.createSubjectKeyIdentifier(key))
                    .addExtension(Extension.authorityKeyIdentifier, false,
                            ids.createAuthorityKeyIdentifier(issuer.getPublicKey()))
                    .addExtension(Extension.subjectAlternativeName, true, new GeneralNames(
                            new GeneralName(GeneralName.uniformResourceIdentifier, id.toString())));
            return convert(builder, issuerKey);
        } catch (CertIOException e) {
            throw new IllegalStateException("cannot encode a workload certificate", e);
        }
    }

    private static X509Certificate convert(X509v3CertificateBuilder builder, PrivateKey signingKey) {
        try {
            ContentSigner signer = new JcaContentSignerBuilder(signatureAlgorithm(signingKey)).build(signingKey);
            return new JcaX509CertificateConverter().getCertificate(builder.build(signer));
        } catch (OperatorCreationException | GeneralSecurityException e) {
            throw new IllegalStateException("cannot sign a certificate with the CA key: " + e.getMessage(), e);
        }
    }

    private static String signatureAlgorithm(PrivateKey key) {
        return switch (key.getAlgorithm()) {
            case "EC", "ECDSA" -> "SHA256withECDSA";
            case "RSA" -> "SHA256withRSA";
            default -> throw new IllegalStateException(
                    "the CA key's algorithm " + key.getAlgorithm() + " is not supported; use EC or RSA");
        };
    }

    /** 127 random bits: positive, unique with overwhelming probability, at most 20 octets. */
    private static BigInteger serial() {
        return new BigInteger(127, RANDOM).setBit(126);
    }
}
