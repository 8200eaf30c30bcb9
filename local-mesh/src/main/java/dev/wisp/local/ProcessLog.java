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
 * The log file of a child process (the mesh's, or one a test starts), appended across its restarts:
 * readiness is judged on what was written after an offset (the current run's lines), and a failure
 * names the file, its last WARN/ERROR line and shows the log's end.
 */
public record ProcessLog(Path file) {
    /** How many of the log's last lines a readiness failure shows. */
    static final int END_LINES = 60;

    public ProcessLog {
        requireNonNull(file, "file");
    }

    /** Where the process's stdout and stderr go: appended, never truncated. */
    ProcessBuilder.Redirect appendTo() {
        return ProcessBuilder.Redirect.appendTo(file.toFile());
    }

    /** The file's length now (0 if absent): the offset the next run's lines start at. */
    public long size() {
        try {
            return Files.exists(file) ? Files.size(file) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    /** Everything written from {@code offset} on; empty when the file is absent or unreadable. */
    public String since(long offset) {
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
     * @throws ClusterException when the process exits first (at once, not at the deadline) or
     *         {@code timeout} passes; the message names the log and its last problem line, and ends with
     *         the log's last {@value #END_LINES} lines since {@code offset}
     */
    public void awaitReady(String what, Process process, long offset, Duration timeout, Predicate<String> ready) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!ready.test(since(offset))) {
            if (!process.isAlive()) {
                throw new ClusterException(what + " exited (status " + process.exitValue() + ") before it was ready; "
                        + "see " + file + lastProblem() + end(offset));
            }
            if (System.nanoTime() > deadline) {
                throw new ClusterException(what + " was not ready within " + timeout.toSeconds() + " s; see " + file
                        + lastProblem() + end(offset));
            }
            process.onExit().completeOnTimeout(process, 100, TimeUnit.MILLISECONDS).join();
        }
    }

    /** The log's last {@value #END_LINES} lines from {@code offset} on, as the end of a failure's message. */
    String end(long offset) {
        List<String> lines = since(offset).lines().toList();
        if (lines.isEmpty()) {
            return "; the log has nothing since the start";
        }
        List<String> last = lines.subList(Math.max(0, lines.size() - END_LINES), lines.size());
        return "; the log's last " + last.size() + " lines:" + System.lineSeparator() + String.join(System
                .lineSeparator(), last);
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
