package dev.wisp.cli;

import picocli.CommandLine;

/**
 * A failure the operator can fix (bad input, missing file, refused request): printed as one line,
 * without a stack trace, with its exit code.
 */
public class UserException extends RuntimeException {
    /**
     * The exit code of input a command cannot use (an option's value, a file that does not read or
     * decode): picocli's own for usage errors, so that every such refusal exits alike.
     */
    public static final int INVALID = CommandLine.ExitCode.USAGE;

    private static final long serialVersionUID = 1L;
    private final int exitCode;

    public UserException(String message) {
        this(message, 1);
    }

    public UserException(String message, int exitCode) {
        super(message);
        this.exitCode = exitCode;
    }

    /** Input the command cannot use: exits {@link #INVALID}. */
    public static UserException invalid(String message) {
        return new UserException(message, INVALID);
    }

    public UserException(String message, Throwable cause) {
        super(message, cause);
        this.exitCode = 1;
    }

    public int exitCode() {
        return exitCode;
    }
}
