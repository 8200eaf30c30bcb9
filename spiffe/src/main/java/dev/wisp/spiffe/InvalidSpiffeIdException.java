package dev.wisp.spiffe;

/**
 * A string that is not a valid SPIFFE ID or trust domain. The message names the offending input
 * and the rule it breaks, so that it can be shown to an operator as is.
 */
public final class InvalidSpiffeIdException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    InvalidSpiffeIdException(String input, String problem) {
        super("invalid SPIFFE ID '" + abbreviate(input) + "': " + problem);
    }

    private static String abbreviate(String input) {
        return input.length() <= 120 ? input : input.substring(0, 120) + "...";
    }
}
