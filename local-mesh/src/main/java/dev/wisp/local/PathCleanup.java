package dev.wisp.local;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The file removals of a cluster's teardown ({@link LocalCluster#down}) and of a mesh's fresh start
 * ({@link LocalMesh}), failures as {@link ClusterException}s, and the creation of directories below
 * the parents that clusters share and a teardown removes.
 */
final class PathCleanup {
    private static final Logger LOG = LoggerFactory.getLogger(PathCleanup.class);

    private PathCleanup() {}

    static void delete(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new ClusterException("cannot remove " + p + ": " + e.getMessage(), e);
        }
    }

    /** Removes {@code root} and everything below it; nothing when it does not exist. */
    static void deleteTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new ClusterException("cannot remove " + root + ": " + e.getMessage(), e);
        }
    }

    /**
     * {@link Files#createDirectories} below a parent clusters share ({@code <cgroup2>/wisp},
     * {@code /sys/fs/bpf/wisp}, {@code /run/wisp/mesh}): another cluster's teardown removes that parent
     * when it is empty ({@link #removeIfEmpty}), which can fall between the creation of the parent
     * and of {@code dir} (clusters go up and down side by side in the e2e suite); then it is tried again.
     */
    static Path createDirectories(Path dir) throws IOException {
        for (int attempt = 1;; attempt++) {
            try {
                return Files.createDirectories(dir);
            } catch (NoSuchFileException e) {
                if (attempt == 5) {
                    throw e;
                }
                LOG.debug("{}: a parent was removed meanwhile, again", dir);
            }
        }
    }

    static void removeIfEmpty(Path dir) {
        try {
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            // Not empty (another cluster still uses it) or busy: it stays, which is correct.
            LOG.debug("{} stays: {}", dir, e.toString());
        }
    }

    /**
     * The UAPI sockets of WireGuard devices named {@code wisp-<cluster>-*}: a device a test starts in
     * a cluster's namespace is named so ({@link LocalCluster#wireguardName}), since the socket directory is shared
     * by every namespace.
     */
    static List<Path> uapiSockets(String cluster) {
        String prefix = "wisp-" + java.util.Objects.requireNonNull(cluster, "cluster") + "-";
        if (!Files.isDirectory(LocalCluster.UAPI_SOCKETS)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(LocalCluster.UAPI_SOCKETS)) {
            return s.filter(p -> p.getFileName().toString().startsWith(prefix)).toList();
        } catch (IOException e) {
            throw new ClusterException("cannot list " + LocalCluster.UAPI_SOCKETS + ": " + e.getMessage(), e);
        }
    }
}
