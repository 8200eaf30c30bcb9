package dev.wisp.node.identity;

/** A certificate could not be obtained; the message says for which identity and why. */
public class IdentityException extends Exception {
    private static final long serialVersionUID = 1L;

    public IdentityException(String message, Throwable cause) {
        super(message, cause);
    }
}
