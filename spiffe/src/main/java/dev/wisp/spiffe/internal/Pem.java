package dev.wisp.spiffe.internal;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.util.io.pem.PemObject;

/** PEM reading and writing for certificates, keys and CSRs. Not part of the public API. */
public final class Pem {
    private Pem() {}

    /** All {@code CERTIFICATE} blocks of {@code pem}, in order; fails if there are none. */
    public static List<X509Certificate> certificates(String pem, String what) {
        List<X509Certificate> certs = new ArrayList<>();
        try {
            CertificateFactory factory = CertificateFactory.getInstance("X.509");
            Collection<? extends java.security.cert.Certificate> parsed = factory
                    .generateCertificates(
                            new ByteArrayInputStream(pem.getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
            for (java.security.cert.Certificate c : parsed) {
                certs.add((X509Certificate) c);
            }
        } catch (CertificateException e) {
            throw new IllegalArgumentException(what + ": not a readable PEM certificate: " + e.getMessage(), e);
        }
        if (certs.isEmpty()) {
            throw new IllegalArgumentException(what + ": no PEM CERTIFICATE block found");
        }
        return List.copyOf(certs);
    }

    /** The one private key in {@code pem} (PKCS#8 {@code PRIVATE KEY} or SEC1 {@code EC PRIVATE KEY}). */
    public static PrivateKey privateKey(String pem, String what) {
        try (PEMParser parser = new PEMParser(new StringReader(pem))) {
            Object o = parser.readObject();
            JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
            if (o instanceof PrivateKeyInfo info) {
                return converter.getPrivateKey(info);
            }
            if (o instanceof PEMKeyPair pair) {
                return converter.getKeyPair(pair).getPrivate();
            }
            throw new IllegalArgumentException(
                    what + ": expected an unencrypted PEM PRIVATE KEY or EC PRIVATE KEY block");
        } catch (IOException e) {
            throw new IllegalArgumentException(what + ": not a readable PEM private key: " + e.getMessage(), e);
        }
    }

    /** PEM text of the certificates, in order. */
    public static String encode(List<X509Certificate> certs) {
        return write(certs);
    }

    /** PEM text of one object (certificate, PKCS#8 private key). */
    public static String encode(Object o) {
        return write(List.of(o));
    }

    /** PEM text of a DER block with the given type, e.g. {@code CERTIFICATE REQUEST}. */
    public static String encode(String type, byte[] der) {
        return write(List.of(new PemObject(type, der)));
    }

    private static String write(List<?> objects) {
        StringWriter out = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
            for (Object o : objects) {
                if (o instanceof PrivateKey key) {
                    writer.writeObject(new PemObject("PRIVATE KEY", key.getEncoded()));
                } else {
                    writer.writeObject(o);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toString();
    }
}
