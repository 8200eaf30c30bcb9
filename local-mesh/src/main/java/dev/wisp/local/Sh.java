package dev.wisp.local;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs short system commands (ip, sysctl, wg, nft) with a deadline, failing with their stderr: what
 * {@link LocalCluster} builds a cluster with, and what tests that use one run inside it.
 */
public final class Sh {
    private static final Logger log = LoggerFactory.getLogger(Sh.class);
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private Sh() {}

    /** Runs {@code command} (30 s at most); returns stdout, or throws naming the command and its stderr. */
    public static String run(List<String> command) {
        return run(TIMEOUT, command);
    }

    public static String run(String... command) {
        return run(List.of(command));
    }

    /** Like {@link #run(List)} with a deadline of {@code timeout} (a ping that waits for retransmissions). */
    public static String run(Duration timeout, List<String> command) {
        Result r = tryRun(timeout, command);
        if (r.exit() != 0) {
            throw new ClusterException("'" + String.join(" ", command) + "' failed (exit " + r.exit() + "): "
                    + r.err().strip());
        }
        return r.out();
    }

    /** A finished command: its exit code, stdout and stderr. */
    public record Result(int exit, String out, String err) {}

    /** Runs {@code command} (30 s at most) and returns its outcome whatever the exit code. */
    public static Result tryRun(List<String> command) {
        return tryRun(TIMEOUT, command);
    }

    /** Runs {@code command} and returns its outcome whatever the exit code; throws when it outlives {@code timeout}. */
    public static Result tryRun(Duration timeout, List<String> command) {
        log.debug("exec {}", command);
        try {
            Process p = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(new java.io.File(
                    "/dev/null"))).start();
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> drain(p.getInputStream()));
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> drain(p.getErrorStream()));
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new ClusterException("'" + String.join(" ", command) + "' did not finish within " + timeout);
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
