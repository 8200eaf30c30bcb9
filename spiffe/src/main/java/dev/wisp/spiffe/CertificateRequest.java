package dev.wisp.spiffe;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.internal.Pem;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.spec.ECGenParameterSpec;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.ExtensionsGenerator;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

/**
 * A fresh ECDSA P-256 key pair and a PKCS#10 certificate signing request for one SPIFFE ID (its only
 * URI SAN). The private key never leaves this object except into the {@link X509Svid} built from
 * the signed chain.
 */
public final class CertificateRequest {
    private final SpiffeId id;
    private final PrivateKey privateKey;
    private final byte[] publicKey;
    private final byte[] der;

    private CertificateRequest(SpiffeId id, KeyPair keys, byte[] der) {
        this.id = id;
        this.privateKey = keys.getPrivate();
        this.publicKey = keys.getPublic().getEncoded();
        this.der = der;
    }

    /** Generates a P-256 key and a CSR for {@code id}. */
    public static CertificateRequest generate(SpiffeId id) {
        requireNonNull(id, "id");
        try {
            KeyPair keys = newP256KeyPair();
            ExtensionsGenerator extensions = new ExtensionsGenerator();
            extensions.addExtension(Extension.subjectAlternativeName, true,
                    new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, id.toString())));
            byte[] der = new JcaPKCS10CertificationRequestBuilder(new X500Name(new org.bouncycastle.asn1.x500.RDN[0]),
                    keys.getPublic())
                    .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, extensions.generate())
                    .build(new JcaContentSignerBuilder("SHA256withECDSA").build(keys.getPrivate())).getEncoded();
            return new CertificateRequest(id, keys, der);
        } catch (OperatorCreationException e) {
            throw new IllegalStateException("cannot sign a CSR with SHA256withECDSA", e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A new ECDSA key pair on curve P-256 (secp256r1), the only kind the CA signs. */
    public static KeyPair newP256KeyPair() {
        try {
            KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
            generator.initialize(new ECGenParameterSpec("secp256r1"));
            return generator.generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("this JDK cannot generate EC P-256 keys", e);
        }
    }

    public SpiffeId id() {
        return id;
    }

    /** The DER encoding of the CSR (a copy). */
    public byte[] der() {
        return der.clone();
    }

    public String pem() {
        return Pem.encode("CERTIFICATE REQUEST", der);
    }

    /** The SVID made of the signed {@code chain} (leaf first) and this request's private key. */
    public X509Svid toSvid(List<X509Certificate> chain) {
        requireNonNull(chain, "chain");
        if (!chain.isEmpty() && !Arrays.equals(chain.get(0).getPublicKey().getEncoded(), publicKey)) {
            throw new IllegalArgumentException("the signed leaf certificate does not carry this request's public key");
        }
        return new X509Svid(id, chain, privateKey);
    }

    @Override
    public String toString() {
        return "CertificateRequest[" + id + "]";
    }
}
