package dev.wisp.spiffe.tls;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import java.security.cert.CertificateException;
import java.util.Optional;

/**
 * A peer's certificate chain failed SPIFFE verification. The message is the one-line reason (for
 * example "certificate expired at ..." or "peer is in trust domain a, expected b"); {@link #kind}
 * says which rule failed, so that a caller can tell a certificate of another CA from an expired
 * one without reading the text, and {@link #claimedId} the SPIFFE ID the certificate names, when it
 * names one (a claim: the certificate was just refused).
 */
public final class PeerRejectedException extends CertificateException {
    private static final long serialVersionUID = 1L;

    /** Which verification rule the chain broke. */
    public enum Kind {
        /** The leaf is not an X.509-SVID: no certificate, not exactly one SPIFFE ID, or a CA certificate. */
        NOT_AN_SVID,
        /** Not issued under the trust bundle: self-signed, another trust domain, or no path to a root. */
        UNTRUSTED_ISSUER,
        /** Outside its validity period. */
        NOT_VALID_NOW,
        /** A valid SVID, but not one of the server identities the client expects. */
        UNEXPECTED_IDENTITY
    }

    private final Kind kind;
    private final transient Optional<SpiffeId> claimedId;

    PeerRejectedException(Kind kind, Optional<SpiffeId> claimedId, String reason, Throwable cause) {
        super(reason, cause);
        this.kind = requireNonNull(kind, "kind");
        this.claimedId = requireNonNull(claimedId, "claimedId");
    }

    public Kind kind() {
        return kind;
    }

    /** The SPIFFE ID in the refused certificate's URI SAN, when it has exactly one that parses. */
    public Optional<SpiffeId> claimedId() {
        return claimedId == null ? Optional.empty() : claimedId;
    }
}
