package dev.wisp.local;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An ahead-of-time class cache (JDK 25, JEP 483/514) for node agents, so that a restarted agent
 * spends less of its outage loading and linking classes: on this kind of 2-core machine it brings
 * an agent from process start to listening from about 4–6 s down to about 2–4 s.
 *
 * <p>The cache is made once per JVM, JVM options and class path (the key hashes them with each class
 * path entry's size and modification time) by a training run: a standalone agent on loopback with
 * ephemeral ports ({@code -XX:AOTMode=record}) that is stopped once ready, then
 * {@code -XX:AOTMode=create}. It lives in {@code ~/.cache/wisp/aot}, a directory only its owner may
 * write (the cache is code the agents load: it must not sit in a world-writable place). A cache the
 * JVM finds stale is ignored by the JVM with a warning, never fatal.
 *
 * <p>Only a launcher of the form {@code [<java>, <options>…, -cp, <jars>, <main>]} gets a cache (the
 * JVM refuses to cache with a directory on the class path); any other command runs unchanged.
 */
final class AgentAotCache {
    private static final Logger log = LoggerFactory.getLogger(AgentAotCache.class);
    private static final long TRAINING_READY_SECONDS = 90;
    /** How many caches {@code ~/.cache/wisp/aot} keeps (about 50 MB each). */
    private static final int KEPT = 6;

    private AgentAotCache() {}

    /**
     * {@code wispCommand} with {@code -XX:AOTCache=<cache>} when a cache exists or can be trained
     * now; {@code wispCommand} itself otherwise (the reason is logged).
     */
    static List<String> agentCommand(List<String> wispCommand) {
        int cp = wispCommand.indexOf("-cp");
        if (!wispCommand.getFirst().endsWith("java") || cp < 1 || cp + 2 >= wispCommand.size()) {
            return wispCommand;
        }
        for (String entry : wispCommand.get(cp + 1).split(java.io.File.pathSeparator)) {
            if (Files.isDirectory(Path.of(entry))) {
                log.info("agents start without an AOT cache: the class path has a directory ({}); the JVM caches "
                        + "classes from jars only", entry);
                return wispCommand;
            }
        }
        try {
            Path dir = ownDirectory(Path.of(System.getProperty("user.home"), ".cache", "wisp", "aot"));
            Path cache = dir.resolve(key(wispCommand) + ".aot");
            if (!Files.isRegularFile(cache, LinkOption.NOFOLLOW_LINKS)) {
                train(wispCommand, dir, cache);
            }
            return with(wispCommand, "-XX:AOTCache=" + cache);
        } catch (IOException | ClusterException e) {
            log.warn("agents start without an AOT cache: {}", e.getMessage());
            return wispCommand;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return wispCommand;
        }
    }

    /** The JVM's options go right after the java binary, before the class path and main class. */
    private static List<String> with(List<String> wispCommand, String... options) {
        List<String> out = new ArrayList<>(wispCommand.size() + options.length);
        out.add(wispCommand.getFirst());
        out.addAll(List.of(options));
        out.addAll(wispCommand.subList(1, wispCommand.size()));
        return out;
    }

    private static void train(List<String> wispCommand, Path dir, Path cache) throws IOException,
            InterruptedException {
        long start = System.nanoTime();
        Path work = Files.createTempDirectory(dir, "training-");
        try {
            Path state = Files.writeString(work.resolve("state.yaml"), "resources: []\n");
            Path conf = work.resolve("agent.aotconf");
            Path log = work.resolve("training.log");
            List<String> cmd = with(wispCommand, "-XX:AOTMode=record", "-XX:AOTConfiguration=" + conf);
            cmd.addAll(List.of("node", "--node", "aot-training", "--state", state.toString(), "--ca-dir", work
                    .resolve("ca").toString(), "--bind", "127.0.0.1", "--ports", "0,0,0,0,0,0,0", "--workers",
                    "1", "--drain-timeout", "PT1S"));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            try {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TRAINING_READY_SECONDS);
                while (!Files.readString(log, StandardCharsets.UTF_8).contains("node agent for aot-training ready")) {
                    if (!p.isAlive() || System.nanoTime() > deadline) {
                        throw new IOException("the training agent was not ready (" + (p.isAlive()
                                ? "timed out"
                                : "exited " + p.exitValue()) + ")");
                    }
                    p.onExit().completeOnTimeout(p, 100, TimeUnit.MILLISECONDS).join();
                }
                p.destroy();
                if (!p.waitFor(60, TimeUnit.SECONDS) || !Files.isRegularFile(conf)) {
                    throw new IOException("the training agent did not write " + conf);
                }
            } finally {
                p.destroyForcibly();
            }
            Path tmp = work.resolve("agent.aot");
            int cp = wispCommand.indexOf("-cp");
            List<String> create = with(wispCommand.subList(0, cp + 2), "-XX:AOTMode=create",
                    "-XX:AOTConfiguration=" + conf, "-XX:AOTCache=" + tmp);
            Process c = new ProcessBuilder(create).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect
                    .appendTo(log.toFile())).start();
            if (!c.waitFor(120, TimeUnit.SECONDS) || c.exitValue() != 0 || !Files.isRegularFile(tmp)) {
                c.destroyForcibly();
                throw new IOException("creating the AOT cache failed; see the end of " + log);
            }
            Files.move(tmp, cache, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            prune(dir, cache);
            AgentAotCache.log.info("trained the agents' AOT cache {} in {} ms", cache, TimeUnit.NANOSECONDS.toMillis(
                    System.nanoTime() - start));
        } finally {
            PathCleanup.deleteTree(work);
        }
    }

    /** Every build makes a new key: keeps the newest caches (other checkouts may use them), deletes the rest. */
    private static void prune(Path dir, Path keep) throws IOException {
        List<Path> old;
        try (var files = Files.list(dir)) {
            old = files.filter(f -> f.getFileName().toString().endsWith(".aot") && !f.equals(keep)).sorted((a,
                    b) -> Long.compare(b.toFile().lastModified(), a.toFile().lastModified())).toList();
        }
        for (Path f : old.subList(Math.min(old.size(), KEPT - 1), old.size())) {
            Files.deleteIfExists(f);
        }
    }

    /** Creates {@code dir} (mode 0700) or checks that it is ours, a real directory, and not group/other writable. */
    private static Path ownDirectory(Path dir) throws IOException {
        Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(
                "rwx------")));
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException(dir + " is not a directory");
        }
        Set<PosixFilePermission> perms = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
        if (!Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS).getName().equals(System.getProperty("user.name"))
                || perms.contains(PosixFilePermission.GROUP_WRITE) || perms.contains(
                        PosixFilePermission.OTHERS_WRITE)) {
            throw new IOException(dir + " must be owned by " + System.getProperty("user.name")
                    + " and writable by nobody else");
        }
        return dir;
    }

    /** Hash of the command and of each class path entry's size and modification time. */
    static String key(List<String> wispCommand) throws IOException {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        for (String arg : wispCommand) {
            sha.update(arg.getBytes(StandardCharsets.UTF_8));
            sha.update((byte) 0);
        }
        String classPath = wispCommand.get(wispCommand.indexOf("-cp") + 1);
        for (String entry : classPath.split(java.io.File.pathSeparator)) {
            Path p = Path.of(entry);
            if (Files.exists(p)) {
                sha.update((Files.size(p) + ":" + Files.getLastModifiedTime(p).toMillis() + "\0").getBytes(
                        StandardCharsets.UTF_8));
            }
        }
        return HexFormat.of().formatHex(sha.digest(), 0, 12);
    }
}
