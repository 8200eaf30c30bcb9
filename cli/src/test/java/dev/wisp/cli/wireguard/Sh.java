package dev.wisp.cli.wireguard;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a command with a deadline and returns its stdout; a non-zero exit fails with stderr. */
final class Sh {
    private Sh() {}

    static String run(String... cmd) {
        return run(60, cmd);
    }

    static String run(int timeoutSeconds, String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .start();
            var out = p.getInputStream();
            var err = p.getErrorStream();
            byte[][] result = new byte[2][];
            Thread t1 = Thread.ofVirtual().start(() -> result[0] = readAll(out));
            Thread t2 = Thread.ofVirtual().start(() -> result[1] = readAll(err));
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out after " + timeoutSeconds + " s: " + String.join(" ", cmd));
            }
            t1.join();
            t2.join();
            String stdout = new String(result[0], StandardCharsets.UTF_8);
            if (p.exitValue() != 0) {
                throw new AssertionError("exit " + p.exitValue() + ": " + String.join(" ", cmd) + "\n" + stdout
                        + new String(result[1], StandardCharsets.UTF_8));
            }
            return stdout;
        } catch (IOException e) {
            throw new AssertionError("cannot run " + List.of(cmd), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    /** Like {@link #run} but ignores failures (cleanup). */
    static void quiet(String... cmd) {
        try {
            run(20, cmd);
        } catch (AssertionError e) {
            // Cleanup of something already gone.
        }
    }

    private static byte[] readAll(java.io.InputStream in) {
        try {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }
}
