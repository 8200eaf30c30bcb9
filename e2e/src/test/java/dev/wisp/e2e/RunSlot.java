package dev.wisp.e2e;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * This JVM's slot among the e2e runs on the machine (an engineer's, the CI's, a second fork): the
 * lowest of 36 whose lock file ({@code <tmp>/wisp-e2e-slot-N.lock}) it could lock, held until the
 * JVM ends. A cluster named through {@link #cluster} carries the slot as a suffix (none for slot 0,
 * {@code 1}..{@code z} for the others), so two runs at once never build, tear down or scan each
 * other's namespaces, cgroups and BPF pins; one run at a time keeps the plain names, and so a run
 * that crashed leaves what the next one removes before it builds the same cluster (as
 * {@link dev.wisp.local.LocalCluster#up} does). Leftover checks and {@code wisp cluster down --name}
 * take the full name ({@link dev.wisp.local.LocalCluster#builtInThisJvm}).
 */
final class RunSlot {
    private static final String DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz";
    private static final Path DIR = Path.of(System.getProperty("java.io.tmpdir"));
    private static FileChannel channel;
    private static FileLock lock;
    private static int slot = -1;

    private RunSlot() {}

    /**
     * {@code name} (at most 7 characters of a cluster name) with this JVM's suffix: a cluster name
     * no other live run on the machine uses.
     */
    static String cluster(String name) {
        if (name.length() > 7) {
            throw new IllegalArgumentException(
                    "cluster name '" + name + "': at most 7 characters, the 8th is the run's");
        }
        int s = slot();
        return s == 0 ? name : name + DIGITS.charAt(s);
    }

    /** This JVM's slot, taken at the first call. */
    static synchronized int slot() {
        if (slot >= 0) {
            return slot;
        }
        for (int i = 0; i < DIGITS.length(); i++) {
            FileChannel c = null;
            try {
                c = FileChannel.open(DIR.resolve("wisp-e2e-slot-" + DIGITS.charAt(i) + ".lock"),
                        StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                FileLock l = c.tryLock();
                if (l != null) {
                    channel = c;
                    lock = l;
                    slot = i;
                    return i;
                }
                c.close();
            } catch (OverlappingFileLockException e) {
                closeQuietly(c);
            } catch (IOException e) {
                closeQuietly(c);
                throw new UncheckedIOException("cannot take an e2e run slot in " + DIR, e);
            }
        }
        throw new IllegalStateException("all " + DIGITS.length() + " e2e run slots in " + DIR + " are taken");
    }

    private static void closeQuietly(FileChannel c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException e) {
                // nothing held
            }
        }
    }
}
