package dev.wisp.node.state;

/** A discovery resource the agent refuses; the message names the resource and the field. */
public class InvalidResourceException extends Exception {
    private static final long serialVersionUID = 1L;

    public InvalidResourceException(String message) {
        super(message);
    }
}
