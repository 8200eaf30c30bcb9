package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * The log file of one of the mesh's child processes, appended across its restarts: readiness is
 * judged on what was written after an offset (the current run's lines), and a failure names the file
 * and its last WARN/ERROR line.
 */
record ProcessLog(Path file) {

    ProcessLog {
        requireNonNull(file, "file");
    }

    /** Where the process's stdout and stderr go: appended, never truncated. */
    ProcessBuilder.Redirect appendTo() {
        return ProcessBuilder.Redirect.appendTo(file.toFile());
    }

    /** The file's length now (0 if absent): the offset the next run's lines start at. */
    long size() {
        try {
            return Files.exists(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** Everything written from {@code offset} on; empty when the file is absent or unreadable. */
    String since(long offset) {
        try {
            if (!Files.exists(file)) {
                return "";
            }
            byte[] all = Files.readAllBytes(file);
            int from = (int) Math.min(offset, all.length);
            return new String(all, from, all.length - from, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    /**
     * Polls {@code ready} with what the log gained since {@code offset}, every 100 ms (or as soon as
     * {@code process} exits), until it holds.
     *
     * @throws ClusterException when the process exits first or {@code timeout} passes; the message
     *         names the log and its last problem line
     */
    void awaitReady(String what, Process process, long offset, Duration timeout, Predicate<String> ready) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!ready.test(since(offset))) {
            if (!process.isAlive()) {
                throw new ClusterException(what + " exited (status " + process.exitValue() + ") before it was ready; "
                        + "see " + file + lastProblem());
            }
            if (System.nanoTime() > deadline) {
                throw new ClusterException(what + " was not ready within " + timeout.toSeconds() + " s; see " + file
                        + lastProblem());
            }
            process.onExit().completeOnTimeout(process, 100, TimeUnit.MILLISECONDS).join();
        }
    }

    private String lastProblem() {
        List<String> lines = since(0).lines().filter(ProcessLog::isProblem).toList();
        return lines.isEmpty() ? "" : " (last problem: " + lines.getLast().strip() + ")";
    }

    /**
     * The first {@code max} distinct problem lines written from {@code offset} on. Lines count as the
     * same when they differ only in numbers (times, addresses, ports), so one refusal repeated every
     * second shows once.
     */
    List<String> firstProblems(long offset, int max) {
        java.util.Map<String, String> first = new java.util.LinkedHashMap<>();
        since(offset).lines().filter(ProcessLog::isProblem).forEach(l -> {
            if (first.size() < max) {
                first.putIfAbsent(l.replaceAll("[0-9]+", "#"), l);
            }
        });
        return List.copyOf(first.values());
    }

    /** A WARN or ERROR line, an access-log line with an {@code error=}, or a CLI's {@code error:} line. */
    private static boolean isProblem(String line) {
        return line.contains(" WARN ") || line.contains(" ERROR ") || line.contains(" error=") || line.startsWith(
                "error");
    }
}
