package dev.wisp.spiffe.internal;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Writes files atomically (temp file + rename), with mode 0600 for secrets: a private key is never
 * readable by others, not even for the instant between create and chmod.
 */
public final class SecureFiles {
    private SecureFiles() {}

    /** Writes {@code text} with mode 0600. */
    public static void writeSecret(Path file, String text) throws IOException {
        write(file, text, "rw-------");
    }

    /** Writes {@code text} with mode 0644. */
    public static void writePublic(Path file, String text) throws IOException {
        write(file, text, "rw-r--r--");
    }

    private static void write(Path file, String text, String mode) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = Files.createTempFile(dir, "." + file.getFileName(), ".tmp",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try {
            Files.writeString(tmp, text, StandardCharsets.US_ASCII);
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString(mode));
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
