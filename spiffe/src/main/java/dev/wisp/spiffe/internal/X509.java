package dev.wisp.spiffe.internal;

import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/** Small X.509 helpers shared by the CA and the verifiers. Not part of the public API. */
public final class X509 {
    private static final int SAN_URI = 6;

    private X509() {}

    /** The certificate's URI subject alternative names, in order (empty when it has none). */
    public static List<String> uriSans(X509Certificate cert) {
        try {
            Collection<List<?>> sans = cert.getSubjectAlternativeNames();
            if (sans == null) {
                return List.of();
            }
            List<String> uris = new ArrayList<>();
            for (List<?> san : sans) {
                if (san.size() >= 2 && san.get(0) instanceof Integer type && type == SAN_URI) {
                    uris.add(String.valueOf(san.get(1)));
                }
            }
            return uris;
        } catch (CertificateParsingException e) {
            throw new IllegalArgumentException("unreadable subject alternative names: " + e.getMessage(), e);
        }
    }

    /** Whether the certificate's issuer is its subject and its own key verifies its signature. */
    public static boolean isSelfSigned(X509Certificate cert) {
        if (!cert.getIssuerX500Principal().equals(cert.getSubjectX500Principal())) {
            return false;
        }
        try {
            cert.verify(cert.getPublicKey());
            return true;
        } catch (java.security.GeneralSecurityException e) {
            return false;
        }
    }
}
