package dev.wisp.bpf.internal;

import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads what libbpf printed during a failed load and finds the one line an operator needs: which
 * program the verifier refused and the verifier's own last word on why. Pure; no I/O.
 */
public final class VerifierLog {
    private static final Pattern BEGIN = Pattern.compile("prog '([^']+)': -- BEGIN PROG LOAD LOG --");
    private static final List<String> NOISE = List.of("processed ", "verification time", "stack depth", "; ",
            "-- END PROG LOAD LOG --", "libbpf:", "Validating ", "mark_precise", "last_idx", "parent didn't",
            "from ", "frame");

    private VerifierLog() {}

    /** The rejected program and the verifier's reason, when the text holds a verifier log. */
    public record Rejection(String program, String reason) {}

    /** Finds the first rejected program's log in {@code libbpfOutput} and its last meaningful line. */
    public static Optional<Rejection> rejection(String libbpfOutput) {
        Matcher m = BEGIN.matcher(libbpfOutput);
        if (!m.find()) {
            return Optional.empty();
        }
        int end = libbpfOutput.indexOf("-- END PROG LOAD LOG --", m.end());
        String body = libbpfOutput.substring(m.end(), end < 0 ? libbpfOutput.length() : end);
        String[] lines = body.split("\n");
        for (int i = lines.length - 1; i >= 0; i--) {
            String line = lines[i].strip();
            if (line.isEmpty() || isNoise(line) || line.matches("^\\d+: .*")) {
                continue;
            }
            return Optional.of(new Rejection(m.group(1), line));
        }
        return Optional.of(new Rejection(m.group(1), "no reason in the verifier log"));
    }

    private static boolean isNoise(String line) {
        for (String prefix : NOISE) {
            if (line.startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }
}
