package dev.wisp.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Checks for what a test needs from the machine (root, a command on PATH). A missing prerequisite
 * fails the test with an {@link AssertionError} that says how to get it: tests never skip
 * themselves, so a CI run cannot pass by testing nothing.
 */
public final class Prerequisites {
    private static final String HOW = "the README's test command (scripts/test.sh) installs it";

    private Prerequisites() {}

    /** Fails unless the test runs as root (uid 0). */
    public static void requireRoot() {
        if (uid() != 0) {
            throw new AssertionError("this test needs root (network namespaces, TUN, eBPF); run the suite as root");
        }
    }

    /** Fails unless every command is found on PATH; returns the resolved paths in order. */
    public static List<Path> requireCommands(String... commands) {
        List<Path> found = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        for (String command : commands) {
            Path p = which(command);
            if (p == null) {
                missing.add(command);
            } else {
                found.add(p);
            }
        }
        if (!missing.isEmpty()) {
            throw new AssertionError("this test needs " + String.join(", ", missing) + " on PATH; " + HOW);
        }
        return found;
    }

    /** The command's path on PATH (or /usr/sbin, /sbin), or {@code null}. */
    public static Path which(String command) {
        String path = System.getenv().getOrDefault("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin";
        for (String dir : path.split(":")) {
            if (dir.isEmpty()) {
                continue;
            }
            Path p = Path.of(dir, command);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    /** Whether the suite runs under CI ({@code CI=true}). */
    public static boolean underCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    static int uid() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:")) {
                    return Integer.parseInt(line.substring(4).trim().split("\\s+")[1]);
                }
            }
        } catch (IOException | RuntimeException e) {
            throw new AssertionError("cannot read the effective uid from /proc/self/status", e);
        }
        throw new AssertionError("no Uid line in /proc/self/status");
    }
}
