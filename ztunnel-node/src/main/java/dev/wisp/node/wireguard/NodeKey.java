package dev.wisp.node.wireguard;

import dev.wisp.wireguard.Key;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.Set;

/**
 * The node's WireGuard private key, kept in the agent's state directory so that a restarted agent
 * keeps its identity towards its peers. The file is created 0600 from its first byte (never briefly
 * readable by others) inside a 0700 directory; a key file readable by group or others is refused,
 * since another user could have copied it. The key itself is never logged ({@link Key#toString} is
 * redacted).
 */
final class NodeKey {
    static final String FILE = "wireguard-private.key";
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");

    private NodeKey() {}

    /** The key in {@code dir}, or a new one written there. */
    static Key loadOrCreate(Path dir) throws IOException {
        Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(
                "rwx------")));
        Path file = dir.resolve(FILE);
        if (!Files.exists(file)) {
            Key fresh = Key.generatePrivate();
            try {
                Files.createFile(file, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
                Files.writeString(file, fresh.toBase64() + "\n", StandardCharsets.US_ASCII,
                        StandardOpenOption.TRUNCATE_EXISTING);
                return fresh;
            } catch (FileAlreadyExistsException raced) {
                // Another start wrote it first: use that one.
            }
        }
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(file);
        if (!OWNER_ONLY.containsAll(mode)) {
            throw new IOException("the WireGuard private key " + file + " is readable by others ("
                    + PosixFilePermissions.toString(mode) + "); remove it so that a new key is made, or chmod 600 it"
                    + " if no one else can have read it");
        }
        try {
            Key k = Key.fromBase64(Files.readString(file, StandardCharsets.US_ASCII).trim());
            if (k.isZero()) {
                throw new IllegalArgumentException("all zeros");
            }
            return k;
        } catch (IllegalArgumentException e) {
            throw new IOException("the WireGuard private key " + file + " is not a base64 key; remove it to make a "
                    + "new one", e);
        }
    }

    /**
     * Replaces the key in {@code dir} with {@code key} (a rotation): written to a file created 0600
     * beside it, then renamed over it, so the key file is always whole and never readable by others.
     */
    static void replace(Path dir, Key key) throws IOException {
        Path file = dir.resolve(FILE);
        Path tmp = dir.resolve(FILE + ".new");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        try {
            Files.writeString(tmp, key.toBase64() + "\n", StandardCharsets.US_ASCII,
                    StandardOpenOption.TRUNCATE_EXISTING);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** When the key in {@code dir} was written (a rotation period counts from here). */
    static Instant written(Path dir) throws IOException {
        return Files.getLastModifiedTime(dir.resolve(FILE)).toInstant();
    }
}
