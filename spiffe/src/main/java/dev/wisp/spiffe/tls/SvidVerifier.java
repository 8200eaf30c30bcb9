package dev.wisp.spiffe.tls;

import dev.wisp.spiffe.InvalidSpiffeIdException;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.internal.X509;
import dev.wisp.spiffe.tls.PeerRejectedException.Kind;
import java.security.GeneralSecurityException;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Verifies a peer's X.509-SVID chain against a trust bundle, without I/O: exactly one URI SAN that
 * is a SPIFFE ID, leaf not a CA and not self-signed, the bundle's trust domain, validity at
 * {@code now}, a PKIX path to one of the bundle's roots, and (for clients) one of the expected
 * identities. Checks run cheapest and most specific first so that the reason names the real fault.
 */
public final class SvidVerifier {
    private SvidVerifier() {}

    /**
     * Returns the peer's SPIFFE ID, or throws {@link PeerRejectedException} with the reason.
     *
     * @param expected identities the peer must have one of; empty to accept any identity of the
     *        bundle's trust domain (the server side: authorization decides later)
     */
    public static SpiffeId verify(X509Certificate[] chain, TrustBundle bundle, Instant now, Set<SpiffeId> expected)
            throws PeerRejectedException {
        if (chain == null || chain.length == 0) {
            throw rejected(Kind.NOT_AN_SVID, null, "the peer presented no certificate", null);
        }
        X509Certificate leaf = chain[0];
        List<String> uris;
        try {
            uris = X509.uriSans(leaf);
        } catch (IllegalArgumentException e) {
            throw rejected(Kind.NOT_AN_SVID, null, "the leaf certificate's SANs are unreadable", e);
        }
        if (uris.size() != 1) {
            throw rejected(Kind.NOT_AN_SVID, null, "the leaf certificate has " + uris.size() + " URI SANs " + uris
                    + "; an X.509-SVID has exactly one", null);
        }
        SpiffeId id;
        try {
            id = SpiffeId.parse(uris.get(0));
        } catch (InvalidSpiffeIdException e) {
            throw rejected(Kind.NOT_AN_SVID, null, "the leaf's URI SAN is not a SPIFFE ID: " + e.getMessage(), e);
        }
        if (leaf.getBasicConstraints() >= 0) {
            throw rejected(Kind.NOT_AN_SVID, id, "the leaf certificate of " + id
                    + " is a CA certificate (basicConstraints CA:true); an X.509-SVID leaf must not be a CA", null);
        }
        if (X509.isSelfSigned(leaf)) {
            throw rejected(Kind.UNTRUSTED_ISSUER, id, "the leaf certificate of " + id
                    + " is self-signed; it must be issued by a root of the trust bundle", null);
        }
        if (!id.trustDomain().equals(bundle.trustDomain())) {
            throw rejected(Kind.UNTRUSTED_ISSUER, id, "the peer " + id + " is in trust domain " + id.trustDomain()
                    + ", expected " + bundle.trustDomain(), null);
        }
        Instant notAfter = leaf.getNotAfter().toInstant();
        if (now.isAfter(notAfter)) {
            throw rejected(Kind.NOT_VALID_NOW, id, "the certificate of " + id + " expired at " + notAfter, null);
        }
        Instant notBefore = leaf.getNotBefore().toInstant();
        if (now.isBefore(notBefore)) {
            throw rejected(Kind.NOT_VALID_NOW, id, "the certificate of " + id + " is not valid until " + notBefore,
                    null);
        }
        validatePath(chain, bundle, now, id);
        if (!expected.isEmpty() && !expected.contains(id)) {
            throw rejected(Kind.UNEXPECTED_IDENTITY, id,
                    "the server identity " + id + " is not one of the expected " + expected, null);
        }
        return id;
    }

    /**
     * Certificates as serial, issuer, key identifier (the last bytes of the {@code kind} key
     * identifier extension: "authority" or "subject") and validity: what tells two look-alike
     * certificates apart when a path is refused. Public facts only.
     */
    private static String describe(java.util.Collection<X509Certificate> certs, String kind) {
        String oid = kind.equals("authority") ? "2.5.29.35" : "2.5.29.14";
        return certs.stream().map(c -> {
            byte[] ext = c.getExtensionValue(oid);
            String keyId = ext == null
                    ? "none"
                    : java.util.HexFormat.of().formatHex(ext, Math.max(0, ext.length - 6),
                            ext.length);
            return c.getSerialNumber().toString(16) + " issued by " + c.getIssuerX500Principal().getName() + " ("
                    + kind + " key id .." + keyId + ", " + c.getNotBefore().toInstant() + " to "
                    + c.getNotAfter().toInstant() + ")";
        }).toList().toString();
    }

    private static PeerRejectedException rejected(Kind kind, SpiffeId claimed, String reason, Throwable cause) {
        return new PeerRejectedException(kind, Optional.ofNullable(claimed), reason, cause);
    }

    private static void validatePath(X509Certificate[] chain, TrustBundle bundle, Instant now, SpiffeId id)
            throws PeerRejectedException {
        List<X509Certificate> path = new ArrayList<>();
        for (X509Certificate cert : chain) {
            // A peer may append the root; a path must end below its trust anchor.
            if (!bundle.contains(cert)) {
                path.add(cert);
            }
        }
        Set<TrustAnchor> anchors = new HashSet<>();
        for (X509Certificate root : bundle.roots()) {
            anchors.add(new TrustAnchor(root, null));
        }
        try {
            PKIXParameters params = new PKIXParameters(anchors);
            params.setRevocationEnabled(false);
            params.setDate(Date.from(now));
            CertPathValidator.getInstance("PKIX")
                    .validate(CertificateFactory.getInstance("X.509").generateCertPath(path), params);
        } catch (CertPathValidatorException e) {
            String reason = e.getReason() == null ? "" : " (" + e.getReason() + ")";
            throw rejected(Kind.UNTRUSTED_ISSUER, id, "the certificate of " + id
                    + " does not chain to the trust bundle of " + bundle.trustDomain() + ": " + e.getMessage() + reason
                    + " [chain " + describe(List.of(chain), "authority") + "; bundle roots "
                    + describe(bundle.roots(), "subject") + "]", e);
        } catch (GeneralSecurityException e) {
            throw rejected(Kind.UNTRUSTED_ISSUER, id,
                    "cannot validate the certificate path of " + id + ": " + e.getMessage(), e);
        }
    }
}
