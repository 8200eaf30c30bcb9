package dev.wisp.local;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** The local mesh's file writes: whole files replaced atomically, and directory trees removed. */
final class MeshFiles {
    private MeshFiles() {}

    /**
     * Writes {@code text} to {@code file} through a temp file beside it and an atomic rename, so a
     * reader (the control plane's directory watch, {@code wisp cluster status}) never sees half of it.
     *
     * @throws ClusterException naming the file when the write fails
     */
    static void writeAtomically(Path file, String text) {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        try {
            for (int attempt = 1;; attempt++) {
                PathCleanup.createDirectories(file.getParent());
                try {
                    Files.writeString(tmp, text);
                    break;
                } catch (NoSuchFileException e) {
                    // The directory was empty and another mesh's teardown removed it (the registry's).
                    if (attempt == 5) {
                        throw e;
                    }
                }
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new ClusterException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }
}
