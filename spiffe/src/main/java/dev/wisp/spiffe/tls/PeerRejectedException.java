package dev.wisp.spiffe.tls;

import java.security.cert.CertificateException;

/**
 * A peer's certificate chain failed SPIFFE verification. The message is the one-line reason (for
 * example "certificate expired at ..." or "peer is in trust domain a, expected b").
 */
public final class PeerRejectedException extends CertificateException {
    private static final long serialVersionUID = 1L;

    PeerRejectedException(String reason) {
        super(reason);
    }

    PeerRejectedException(String reason, Throwable cause) {
        super(reason, cause);
    }
}
