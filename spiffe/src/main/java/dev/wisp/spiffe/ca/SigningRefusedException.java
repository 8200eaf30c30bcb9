package dev.wisp.spiffe.ca;

/**
 * The CA refused a signing request. Subclasses say why; {@link #reason()} gives the same as a value
 * for mapping onto protocol status codes. The message is safe to return to the caller and tells it
 * what to change.
 */
public class SigningRefusedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** Why a request was refused. */
    public enum Reason {
        /** Not a parseable PKCS#10 request, bad signature, or no usable SPIFFE ID in it. */
        MALFORMED_REQUEST,
        /** The key is not ECDSA P-256. */
        UNSUPPORTED_KEY,
        /** The request exceeds the size limit. */
        TOO_LARGE,
        /** The caller may not obtain this identity. */
        NOT_AUTHORIZED
    }

    private final Reason reason;

    SigningRefusedException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    SigningRefusedException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }

    /** The CSR cannot be parsed, its signature does not verify, or its SPIFFE ID is unusable. */
    public static final class MalformedCsrException extends SigningRefusedException {
        private static final long serialVersionUID = 1L;

        MalformedCsrException(String message) {
            super(Reason.MALFORMED_REQUEST, message);
        }

        MalformedCsrException(String message, Throwable cause) {
            super(Reason.MALFORMED_REQUEST, message, cause);
        }
    }

    /** The CSR's key is not ECDSA on curve P-256. */
    public static final class UnsupportedKeyException extends SigningRefusedException {
        private static final long serialVersionUID = 1L;

        UnsupportedKeyException(String message) {
            super(Reason.UNSUPPORTED_KEY, message);
        }
    }

    /** The request is larger than any legitimate CSR. */
    public static final class RequestTooLargeException extends SigningRefusedException {
        private static final long serialVersionUID = 1L;

        RequestTooLargeException(String message) {
            super(Reason.TOO_LARGE, message);
        }
    }

    /** The identity is outside this CA's trust domain, or the caller's node does not host it. */
    public static final class NotAuthorizedException extends SigningRefusedException {
        private static final long serialVersionUID = 1L;

        NotAuthorizedException(String message) {
            super(Reason.NOT_AUTHORIZED, message);
        }
    }
}
