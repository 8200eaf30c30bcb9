package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which meshes run on this machine and who owns them: one {@code /run/wisp/mesh/NAME.properties}
 * per mesh {@link LocalMesh#up} started (owner pid and start time, work and config directories), so
 * that {@code wisp cluster status/down} in another process finds a mesh, including one whose owner
 * crashed. The processes themselves are found by cgroup, not from here.
 */
final class MeshRegistry {
    private static final Logger log = LoggerFactory.getLogger(MeshRegistry.class);
    /** Where {@link LocalMesh#down} finds a cluster's directories after a crash. */
    static final Path REGISTRY = Path.of("/run/wisp/mesh");

    private MeshRegistry() {}

    /** Records this process as the owner of {@code spec}'s mesh. */
    static void register(MeshSpec spec) {
        ProcessHandle self = ProcessHandle.current();
        String text = "owner=" + self.pid() + "\nownerStart=" + self.info().startInstant().map(i -> i.toEpochMilli())
                .orElse(-1L) + "\nworkDir=" + escape(spec.workDir()) + "\nconfigDir=" + escape(spec.configDir())
                + "\n";
        MeshFiles.writeAtomically(file(spec.cluster().name()), text);
    }

    /** Forgets mesh {@code name} and removes its generated config file; the registry directory goes when empty. */
    static void unregister(String name) {
        try {
            Optional<LocalMesh.Status> s = status(name);
            if (s.isPresent()) {
                Files.deleteIfExists(s.get().configDir().resolve(LocalMesh.generatedFileName(name)));
            }
            Files.deleteIfExists(file(name));
            Files.deleteIfExists(REGISTRY);
        } catch (DirectoryNotEmptyException e) {
            log.debug("{} holds other meshes", REGISTRY);
        } catch (IOException e) {
            throw new ClusterException("cannot unregister mesh " + name + ": " + e.getMessage(), e);
        }
    }

    /** See {@link LocalMesh#status}. */
    static Optional<LocalMesh.Status> status(String name) {
        requireNonNull(name, "name");
        Path file = file(name);
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        Properties p = new Properties();
        try (var in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(in);
        } catch (IOException e) {
            throw new ClusterException("cannot read " + file + ": " + e.getMessage(), e);
        }
        long owner = Long.parseLong(p.getProperty("owner", "-1"));
        // A pid alone could be reused: the owner is alive only if its start time matches too.
        boolean alive = ProcessHandle.of(owner).map(h -> h.isAlive() && h.info().startInstant().map(i -> i
                .toEpochMilli() == Long.parseLong(p.getProperty("ownerStart", "-1"))).orElse(true)).orElse(false);
        return Optional.of(new LocalMesh.Status(name, owner, alive, Path.of(p.getProperty("workDir")), Path.of(p
                .getProperty("configDir")), Cgroups.pids(Cgroups.wispRoot().resolve(name))));
    }

    /** See {@link LocalMesh#registered}. */
    static List<String> registered() {
        if (!Files.isDirectory(REGISTRY)) {
            return List.of();
        }
        try (var s = Files.list(REGISTRY)) {
            return s.map(f -> f.getFileName().toString()).filter(f -> f.endsWith(".properties")).map(f -> f
                    .substring(0, f.length() - ".properties".length())).sorted().toList();
        } catch (IOException e) {
            throw new ClusterException("cannot list " + REGISTRY + ": " + e.getMessage(), e);
        }
    }

    private static Path file(String name) {
        return REGISTRY.resolve(name + ".properties");
    }

    private static String escape(Path p) {
        return p.toString().replace("\\", "\\\\").replace("\n", "\\n");
    }
}
