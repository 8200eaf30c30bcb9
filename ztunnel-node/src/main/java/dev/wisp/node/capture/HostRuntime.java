package dev.wisp.node.capture;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a node needs to run the CNI plugin, placed there by the installer from its own image. The
 * plugin is Wisp itself ({@code wisp cni}), a Java program, and the container runtime runs it on
 * the host, outside any container: so {@code install-cni} copies the image's Java runtime and jars
 * into a host directory, one subdirectory per content ({@code wisp-<16 hex>}, a digest of the jars
 * and the runtime's {@code release} file and module image), and writes there the launcher that runs
 * them, which {@link CniInstall} then copies into the CNI bin directory as {@code wisp-cni}.
 *
 * <p>The copy is made under a temporary name and renamed into place, so a launcher never names a
 * half-copied runtime; an existing complete copy is reused (a restarted installer copies nothing).
 * An installer removes the copies of other contents except the one the node's launcher still names
 * when it starts ({@link #removeOthers}): the launcher it replaces keeps its runtime until the next
 * installer's start, so a plugin call that began on it just before runs to its end. Only a call
 * still running when two later installers have started (two updates within one call, which lasts
 * at most the plugin's enroll timeout) can lose its runtime; it then fails, and the kubelet retries
 * the sandbox on the current launcher (the plugin fails closed). The runtime needs from the host
 * only its C library (the image's Java links against glibc).
 */
public final class HostRuntime {
    private static final Logger LOG = LoggerFactory.getLogger(HostRuntime.class);
    static final String PREFIX = "wisp-";
    static final String LAUNCHER = "wisp-cni";
    private static final String COMPLETE = ".complete";
    /** The copied runtime's {@code java}, under a copy's directory. */
    private static final Path JAVA = Path.of("java/bin/java");

    /**
     * @param javaHome the Java runtime to copy (the installer's own, {@code java.home})
     * @param libDir the directory of Wisp's jars to copy (every {@code *.jar} in it)
     * @param copyDir where the installer writes: the host directory as mounted in its container
     * @param hostDir the same directory as the host names it (what the launcher refers to)
     */
    public record Settings(Path javaHome, Path libDir, Path copyDir, Path hostDir) {
        public Settings {
            requireNonNull(javaHome, "javaHome");
            requireNonNull(libDir, "libDir");
            requireNonNull(copyDir, "copyDir");
            requireNonNull(hostDir, "hostDir");
            if (!hostDir.isAbsolute()) {
                throw new IllegalArgumentException("the host's directory '" + hostDir + "' is not absolute");
            }
        }
    }

    private HostRuntime() {}

    /**
     * Places the runtime and jars under {@code copyDir} (unless that content is there already) and
     * returns the launcher written beside them.
     */
    public static Path install(Settings s) throws IOException {
        List<Path> jars = jars(s.libDir());
        if (jars.isEmpty()) {
            throw new IOException("no jar in " + s.libDir() + ": nothing to copy for the host's plugin");
        }
        if (!Files.isExecutable(s.javaHome().resolve("bin/java"))) {
            throw new IOException("no Java runtime at " + s.javaHome() + " to copy for the host's plugin");
        }
        String name = PREFIX + digest(s.javaHome(), jars);
        Path target = s.copyDir().resolve(name);
        Files.createDirectories(s.copyDir());
        if (Files.exists(target.resolve(COMPLETE))) {
            LOG.info("the host's plugin runtime {} is in place", s.hostDir().resolve(name));
        } else {
            Path tmp = s.copyDir().resolve("." + name + ".tmp-" + ProcessHandle.current().pid());
            deleteTree(tmp);
            copyTree(s.javaHome(), tmp.resolve("java"));
            Files.createDirectories(tmp.resolve("lib"));
            for (Path jar : jars) {
                Files.copy(jar, tmp.resolve("lib").resolve(jar.getFileName()));
            }
            Path launcher = tmp.resolve(LAUNCHER);
            Files.writeString(launcher, launcher(s.hostDir().resolve(name)));
            Files.setPosixFilePermissions(launcher, PosixFilePermissions.fromString("rwxr-xr-x"));
            Files.createFile(tmp.resolve(COMPLETE));
            deleteTree(target); // an incomplete copy of an earlier run
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException e) {
                deleteTree(tmp); // another installer placed the same content meanwhile
            }
            LOG.info("copied the plugin's Java runtime and {} jars to the host's {}", jars.size(), s.hostDir()
                    .resolve(name));
        }
        return target.resolve(LAUNCHER);
    }

    /**
     * Removes every copy under {@code copyDir} but {@code keep} (the new launcher's directory) and the
     * copy the node's launcher {@code current} (the CNI bin directory's {@code wisp-cni}, before the
     * new one replaces it) runs, if it names one of {@code copyDir}'s.
     */
    public static void removeOthers(Path copyDir, Path keep, Path current) throws IOException {
        String previous = copyNamedBy(current);
        try (Stream<Path> entries = Files.list(copyDir)) {
            for (Path p : entries.toList()) {
                String n = p.getFileName().toString();
                if ((n.startsWith(PREFIX) || n.startsWith("." + PREFIX)) && !p.equals(keep.getParent()) && !n.equals(
                        previous)) {
                    deleteTree(p);
                    LOG.info("removed the host's earlier plugin runtime {}", n);
                }
            }
        }
    }

    /**
     * The name of the copy ({@code wisp-<16 hex>}) whose Java the launcher {@code launcher} runs, or
     * null when there is no such launcher or it is not one this class wrote: read back as
     * {@link #launcher} writes it, an {@code exec} line whose first word is the copy's Java, quoted.
     */
    static String copyNamedBy(Path launcher) throws IOException {
        if (!Files.isRegularFile(launcher)) {
            return null;
        }
        String exec = "exec '";
        for (String line : Files.readAllLines(launcher, StandardCharsets.UTF_8)) {
            int end = line.indexOf('\'', exec.length());
            if (line.startsWith(exec) && end > 0) {
                return copyOf(line.substring(exec.length(), end));
            }
        }
        return null;
    }

    /** The copy whose Java {@code java} is ({@code <dir>/wisp-<16 hex>/java/bin/java}), or null when none's. */
    private static String copyOf(String java) {
        Path path;
        try {
            path = Path.of(java);
        } catch (InvalidPathException e) {
            return null;
        }
        int names = JAVA.getNameCount();
        if (path.getNameCount() <= names || !path.endsWith(JAVA)) {
            return null;
        }
        String copy = path.getName(path.getNameCount() - names - 1).toString();
        return isCopyName(copy) ? copy : null;
    }

    /** Whether {@code name} is a copy's: {@code wisp-} and 16 lower-case hex digits, as {@link #install} names it. */
    static boolean isCopyName(String name) {
        return name.length() == PREFIX.length() + 16 && name.startsWith(PREFIX) && name.substring(PREFIX.length())
                .chars().allMatch(c -> (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    }

    /** The launcher: runs {@code wisp cni} on the copied runtime and jars (paths as the host names them). */
    static String launcher(Path dir) {
        return """
                #!/bin/sh
                # The Wisp CNI plugin, run by the container runtime. Written by wisp cni install.
                exec '%s' --enable-native-access=ALL-UNNAMED -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx64m \\
                  -cp '%s' dev.wisp.cli.Wisp cni "$@"
                """.formatted(dir.resolve(JAVA), dir.resolve("lib") + "/*");
    }

    static List<Path> jars(Path libDir) throws IOException {
        try (Stream<Path> s = Files.list(libDir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".jar") && Files.isRegularFile(p)).sorted()
                    .toList();
        }
    }

    /** 16 hex digits of SHA-256 over each jar (name and bytes) and the runtime's identity. */
    static String digest(Path javaHome, List<Path> jars) throws IOException {
        MessageDigest d = sha256();
        for (Path jar : jars) {
            feed(d, jar.getFileName().toString(), jar);
        }
        for (String part : List.of("release", "lib/modules")) {
            Path p = javaHome.resolve(part);
            if (Files.isRegularFile(p)) {
                feed(d, part, p);
            }
        }
        return HexFormat.of().formatHex(d.digest()).substring(0, 16);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("no SHA-256 in this JDK", e);
        }
    }

    private static void feed(MessageDigest d, String name, Path file) throws IOException {
        d.update((name + "\0" + Files.size(file) + "\0").getBytes(StandardCharsets.UTF_8));
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0;) {
                d.update(buf, 0, n);
            }
        }
    }

    /** Copies a tree: files with their permissions, symbolic links as links. */
    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> all = Files.walk(from)) {
            for (Path p : all.toList()) {
                Path t = to.resolve(from.relativize(p).toString());
                if (Files.isSymbolicLink(p)) {
                    Files.createSymbolicLink(t, Files.readSymbolicLink(p));
                } else if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                    Files.createDirectories(t);
                } else {
                    Files.copy(p, t, StandardCopyOption.COPY_ATTRIBUTES, LinkOption.NOFOLLOW_LINKS);
                }
            }
        }
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> all = Files.walk(root)) {
            all.sorted((a, b) -> b.getNameCount() - a.getNameCount()).forEach(p -> {
                try {
                    Files.delete(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }
}
