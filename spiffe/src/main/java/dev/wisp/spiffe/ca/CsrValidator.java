package dev.wisp.spiffe.ca;

import dev.wisp.spiffe.InvalidSpiffeIdException;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.ca.SigningRefusedException.MalformedCsrException;
import dev.wisp.spiffe.ca.SigningRefusedException.RequestTooLargeException;
import dev.wisp.spiffe.ca.SigningRefusedException.UnsupportedKeyException;
import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.security.PublicKey;
import java.security.interfaces.ECPublicKey;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.pkcs.Attribute;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.sec.SECObjectIdentifiers;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;
import org.bouncycastle.util.io.pem.PemObject;
import org.bouncycastle.util.io.pem.PemReader;

/**
 * Pure validation of an untrusted PKCS#10 request: size, encoding, key type (ECDSA P-256 only),
 * proof of possession (the request's signature), and exactly one URI SAN that is a SPIFFE ID. Every
 * refusal is a {@link SigningRefusedException} with a message for the requester.
 */
final class CsrValidator {
    /** A P-256 CSR with one URI SAN is ~400 bytes DER; 8 KiB leaves room for PEM and long IDs. */
    static final int MAX_REQUEST_BYTES = 8 * 1024;

    record Validated(SpiffeId id, PublicKey publicKey) {}

    private CsrValidator() {}

    static Validated validate(byte[] request) {
        if (request == null || request.length == 0) {
            throw new MalformedCsrException("the certificate request is empty");
        }
        if (request.length > MAX_REQUEST_BYTES) {
            throw new RequestTooLargeException("the certificate request is " + request.length
                    + " bytes; at most " + MAX_REQUEST_BYTES + " are accepted");
        }
        PKCS10CertificationRequest csr = parse(request);
        PublicKey key = checkKey(csr);
        checkSignature(csr);
        return new Validated(uriSan(csr), key);
    }

    private static PKCS10CertificationRequest parse(byte[] request) {
        byte[] der = request;
        String head = new String(request, 0, Math.min(request.length, 64), StandardCharsets.US_ASCII);
        if (head.stripLeading().startsWith("-----BEGIN")) {
            try (PemReader reader = new PemReader(new StringReader(new String(request, StandardCharsets.US_ASCII)))) {
                PemObject pem = reader.readPemObject();
                if (pem == null || !(pem.getType().equals("CERTIFICATE REQUEST")
                        || pem.getType().equals("NEW CERTIFICATE REQUEST"))) {
                    throw new MalformedCsrException("the PEM block is not a CERTIFICATE REQUEST");
                }
                der = pem.getContent();
            } catch (IOException | RuntimeException e) {
                if (e instanceof MalformedCsrException m) {
                    throw m;
                }
                throw new MalformedCsrException("the PEM certificate request cannot be decoded: " + e.getMessage(), e);
            }
        }
        try {
            return new PKCS10CertificationRequest(der);
        } catch (IOException | RuntimeException e) {
            throw new MalformedCsrException("not a PKCS#10 certificate request (DER or PEM): " + e.getMessage(), e);
        }
    }

    private static PublicKey checkKey(PKCS10CertificationRequest csr) {
        SubjectPublicKeyInfo info = csr.getSubjectPublicKeyInfo();
        AlgorithmIdentifier alg = info.getAlgorithm();
        ASN1ObjectIdentifier algorithm = alg.getAlgorithm();
        if (!algorithm.equals(X9ObjectIdentifiers.id_ecPublicKey)) {
            String name = algorithm.equals(PKCSObjectIdentifiers.rsaEncryption) ? "RSA" : algorithm.getId();
            throw new UnsupportedKeyException(
                    "the request's key is " + name + "; only ECDSA P-256 (secp256r1) keys are signed");
        }
        if (!(alg.getParameters() instanceof ASN1ObjectIdentifier curve)
                || !curve.equals(SECObjectIdentifiers.secp256r1)) {
            String name = alg.getParameters() instanceof ASN1ObjectIdentifier c ? curveName(c) : "explicit parameters";
            throw new UnsupportedKeyException("the request's EC key is on curve " + name
                    + "; only P-256 (secp256r1) is signed");
        }
        try {
            PublicKey key = new JcaPKCS10CertificationRequest(csr).getPublicKey();
            if (!(key instanceof ECPublicKey)) {
                throw new UnsupportedKeyException("the request's key is not an EC key");
            }
            return key;
        } catch (java.security.GeneralSecurityException | RuntimeException e) {
            if (e instanceof UnsupportedKeyException u) {
                throw u;
            }
            throw new MalformedCsrException("the request's public key cannot be decoded: " + e.getMessage(), e);
        }
    }

    private static String curveName(ASN1ObjectIdentifier curve) {
        if (curve.equals(SECObjectIdentifiers.secp384r1)) {
            return "P-384 (secp384r1)";
        }
        if (curve.equals(SECObjectIdentifiers.secp521r1)) {
            return "P-521 (secp521r1)";
        }
        return curve.getId();
    }

    private static void checkSignature(PKCS10CertificationRequest csr) {
        boolean valid;
        try {
            valid = csr.isSignatureValid(new JcaContentVerifierProviderBuilder().build(csr.getSubjectPublicKeyInfo()));
        } catch (Exception e) {
            throw new MalformedCsrException("the request's signature cannot be checked: " + e.getMessage(), e);
        }
        if (!valid) {
            throw new MalformedCsrException(
                    "the request's signature does not verify with its own key (no proof of possession)");
        }
    }

    private static SpiffeId uriSan(PKCS10CertificationRequest csr) {
        List<String> uris = new ArrayList<>();
        try {
            for (Attribute attribute : csr.getAttributes(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest)) {
                for (var value : attribute.getAttributeValues()) {
                    Extensions extensions = Extensions.getInstance(value);
                    GeneralNames names = GeneralNames.fromExtensions(extensions, Extension.subjectAlternativeName);
                    if (names == null) {
                        continue;
                    }
                    for (GeneralName name : names.getNames()) {
                        if (name.getTagNo() == GeneralName.uniformResourceIdentifier) {
                            uris.add(name.getName().toString());
                        }
                    }
                }
            }
        } catch (RuntimeException e) {
            throw new MalformedCsrException("the request's extensions cannot be decoded: " + e.getMessage(), e);
        }
        if (uris.size() != 1) {
            throw new MalformedCsrException("the request has " + uris.size()
                    + " URI SANs; it must name exactly one SPIFFE ID as its URI subject alternative name");
        }
        try {
            return SpiffeId.parse(uris.get(0));
        } catch (InvalidSpiffeIdException e) {
            throw new MalformedCsrException(e.getMessage(), e);
        }
    }
}
