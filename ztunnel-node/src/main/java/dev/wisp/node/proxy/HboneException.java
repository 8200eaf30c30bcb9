package dev.wisp.node.proxy;

/** An HBONE tunnel could not be set up; the message names the peer and what to check. */
public class HboneException extends Exception {
    private static final long serialVersionUID = 1L;

    public HboneException(String message, Throwable cause) {
        super(message, cause);
    }
}
