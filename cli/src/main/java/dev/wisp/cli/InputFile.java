package dev.wisp.cli;

import java.util.List;
import java.io.PrintWriter;
import dev.wisp.controlplane.config.ConfigError;
import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A configuration file an offline command ({@code wisp policy check}, {@code wisp route check})
 * reads whole: refused before reading when it is larger than any such file can be, and every failure
 * a {@link UserException} that names the file and exits {@link UserException#INVALID}; a
 * file the control plane's decoder refuses is reported the same way by both commands ({@link #refused}).
 */
public final class InputFile {
    /** A policy or route file is a few KiB; refuse what cannot be one before reading it. */
    public static final long MAX_BYTES = 8 << 20;

    private InputFile() {}

    /** The UTF-8 text of {@code file}; a missing, unreadable or oversized file is invalid input. */
    public static String read(Path file) {
        requireNonNull(file, "file");
        try {
            if (Files.size(file) > MAX_BYTES) {
                throw UserException.invalid(file + " is larger than " + MAX_BYTES + " bytes");
            }
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw UserException.invalid("cannot read " + file + ": " + e.getMessage());
        }
    }

    /**
     * Writes each of {@code errors} (the decoder's {@code file:line Kind ns/name: field: message}) to
     * {@code err} and returns the failure to throw: {@code what} is refused, nothing was checked.
     */
    public static UserException refused(String what, List<ConfigError> errors, PrintWriter err) {
        for (ConfigError error : errors) {
            err.println(error);
        }
        err.flush();
        return UserException.invalid(what + " refused (" + errors.size() + " error(s)); nothing checked");
    }
}
