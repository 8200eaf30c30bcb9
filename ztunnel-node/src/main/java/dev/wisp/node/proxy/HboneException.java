package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

/**
 * An HBONE tunnel could not be set up; the message names the peer and what to check, and
 * {@link #outcome} is what the connection that waited for it records and tells its client.
 */
public class HboneException extends Exception {
    private static final long serialVersionUID = 1L;
    private final transient Outcome.Failed outcome;

    public HboneException(Outcome.Failed outcome, Throwable cause) {
        super(requireNonNull(outcome, "outcome").reason(), cause);
        this.outcome = outcome;
    }

    /** Why, as the connection's outcome. */
    public Outcome.Failed outcome() {
        return outcome;
    }
}
