package dev.wisp.local;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Runs short system commands (ip, sysctl) with a deadline, failing with their stderr. */
final class Sh {
    private static final Logger log = LoggerFactory.getLogger(Sh.class);
    private static final long TIMEOUT_SECONDS = 30;

    private Sh() {}

    /** Runs {@code command}; returns stdout, or throws naming the command and its stderr. */
    static String run(List<String> command) {
        Result r = tryRun(command);
        if (r.exit() != 0) {
            throw new ClusterException("'" + String.join(" ", command) + "' failed (exit " + r.exit() + "): "
                    + r.err().strip());
        }
        return r.out();
    }

    static String run(String... command) {
        return run(List.of(command));
    }

    record Result(int exit, String out, String err) {}

    /** Runs {@code command} and returns its outcome whatever the exit code. */
    static Result tryRun(List<String> command) {
        log.debug("exec {}", command);
        try {
            Process p = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(new java.io.File(
                    "/dev/null"))).start();
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> drain(p.getInputStream()));
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> drain(p.getErrorStream()));
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new ClusterException("'" + String.join(" ", command) + "' did not finish within "
                        + TIMEOUT_SECONDS + " s");
            }
            return new Result(p.exitValue(), out.join(), err.join());
        } catch (IOException e) {
            throw new ClusterException("cannot run '" + command.getFirst() + "': " + e.getMessage()
                    + " (is iproute2 installed?)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ClusterException("interrupted while running " + command, e);
        }
    }

    private static String drain(java.io.InputStream in) {
        try (in) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }
}
