package dev.wisp.base;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Objects;

/**
 * A unix socket's file that this process bound, removed on close only while it is still that file:
 * a newer process may have replaced it at the same path (a node agent taking over from a running one
 * binds its sockets where the old one's are), and the old one's close must not take the new one's away.
 *
 * @param path where the socket is
 * @param key the file's identity when it was bound ({@link BasicFileAttributes#fileKey()}: device and inode)
 */
public record SocketFile(Path path, Object key) {
    public SocketFile {
        requireNonNull(path, "path");
        requireNonNull(key, "key");
    }

    /** The file at {@code path}, just bound by this process. */
    public static SocketFile bound(Path path) throws IOException {
        Object key = Files.readAttributes(requireNonNull(path, "path"), BasicFileAttributes.class).fileKey();
        return new SocketFile(path, requireNonNull(key, "this file system gives no file key"));
    }

    /**
     * Removes the file when it is still the one bound (same device and inode).
     *
     * @return whether it was removed
     */
    public boolean deleteIfStillOurs() throws IOException {
        try {
            if (!Objects.equals(key, Files.readAttributes(path, BasicFileAttributes.class).fileKey())) {
                return false;
            }
        } catch (NoSuchFileException e) {
            return false;
        }
        return Files.deleteIfExists(path);
    }
}
