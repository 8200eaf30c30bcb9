package dev.wisp.linux;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Which file systems are mounted where, and {@code mount(2)} for the pseudo file systems Wisp needs. */
public final class Mounts {
    private static final MethodHandle MOUNT = Libc.downcall("mount",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

    private Mounts() {}

    /** Whether a file system of {@code type} is mounted exactly at {@code mountPoint} (per /proc/self/mounts). */
    public static boolean isMounted(Path mountPoint, String type) throws IOException {
        requireNonNull(mountPoint, "mountPoint");
        requireNonNull(type, "type");
        List<String> lines = Files.readAllLines(Path.of("/proc/self/mounts"));
        String where = mountPoint.toAbsolutePath().normalize().toString();
        for (String line : lines) {
            String[] f = line.split(" ");
            if (f.length > 2 && f[1].equals(where) && f[2].equals(type)) {
                return true;
            }
        }
        return false;
    }

    /** {@code mount(source, target, type, 0, NULL)}. */
    public static void mount(String source, Path target, String type) throws NativeException {
        requireNonNull(source, "source");
        requireNonNull(target, "target");
        requireNonNull(type, "type");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(arena);
            int rc = (int) MOUNT.invokeExact(err, arena.allocateFrom(source), arena.allocateFrom(target.toString()),
                    arena.allocateFrom(type), 0L, MemorySegment.NULL);
            if (rc < 0) {
                throw new NativeException("mount(" + type + " on " + target + ")", Libc.errno(err));
            }
        } catch (NativeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("mount: unexpected failure of the native call", t);
        }
    }
}
