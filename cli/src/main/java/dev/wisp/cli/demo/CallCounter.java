package dev.wisp.cli.demo;

import static java.util.Objects.requireNonNull;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

/**
 * Follows one {@code wisp demo-app client}'s output ({@code HH:mm:ss call N ok 200 hello from X} or
 * {@code HH:mm:ss call N failed why}) and counts its calls. Lines are read by one virtual thread;
 * the counters are read by the story. Guarded by its own monitor.
 */
final class CallCounter {
    private final String name;
    // Guarded by `this`.
    private long ok;
    private long failed;
    private long consecutiveFailures;
    private String lastLine = "";
    private final java.util.Map<String, Long> answers = new java.util.TreeMap<>();

    CallCounter(String name) {
        this.name = requireNonNull(name, "name");
    }

    /** Starts reading {@code output} until it ends (the client stopped). */
    CallCounter follow(InputStream output) {
        Thread.ofVirtual().name("demo-" + name).start(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(output, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null;) {
                    accept(line);
                }
            } catch (IOException e) {
                // The client was stopped: nothing more to count.
            }
        });
        return this;
    }

    /** Counts one output line; lines that are not calls (JVM warnings) are ignored. */
    synchronized void accept(String line) {
        String[] w = line.strip().split(" ", 5);
        if (w.length < 4 || !w[1].equals("call")) {
            return;
        }
        answers.merge(w[3].equals("ok") && w.length == 5 ? w[4] : "failed", 1L, Long::sum);
        if (w[3].equals("ok") && w.length == 5 && w[4].startsWith("200 ")) {
            ok++;
            consecutiveFailures = 0;
        } else {
            failed++;
            consecutiveFailures++;
        }
        lastLine = line.strip();
    }

    String name() {
        return name;
    }

    synchronized long ok() {
        return ok;
    }

    synchronized long failed() {
        return failed;
    }

    synchronized long consecutiveFailures() {
        return consecutiveFailures;
    }

    /** Calls by answer ({@code 200 hello from server}, {@code 404 …}, or {@code failed}), sorted. */
    synchronized java.util.Map<String, Long> answers() {
        return new java.util.TreeMap<>(answers);
    }

    /** {@code default/client: 3 ok, 58 failed, last: 05:03:48 call 61 failed …}, for a step that timed out. */
    synchronized String summary() {
        return name + ": " + ok + " ok, " + failed + " failed" + (lastLine.isEmpty() ? "" : ", last: " + lastLine);
    }

    synchronized String lastLine() {
        return lastLine;
    }
}
