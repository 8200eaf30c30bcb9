package dev.wisp.e2e;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The figures of {@link NoisyNeighbourE2eTest} (and {@code bench/noisy/run.sh}): rounds of
 * interleaved phases ({@code alone}, {@code flood}, {@code push}, {@code solo}), each noise compared
 * with its own round's {@code alone}, and the medians over the rounds.
 */
final class NoisyReport {
    private NoisyReport() {}

    static double num(Map<String, String> m, String key) {
        return Double.parseDouble(m.getOrDefault(key, "NaN"));
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n == 0 ? Double.NaN : n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    /** Each round's ratio of quiet's {@code kind} p99 under {@code noise} to its p99 alone in that round. */
    static double[] ratios(List<Map<String, Map<String, String>>> quietBy, String noise, String kind) {
        return quietBy.stream().mapToDouble(r -> num(r.get(noise), kind + "_p99_us") / num(r.get("alone"), kind
                + "_p99_us")).toArray();
    }

    static double medianRatio(List<Map<String, Map<String, String>>> quietBy, String noise, String kind) {
        return median(ratios(quietBy, noise, kind));
    }

    private static double[] of(List<Map<String, Map<String, String>>> by, String phase, String key) {
        return by.stream().mapToDouble(r -> num(r.get(phase), key)).toArray();
    }

    private static String list(double[] v, String format) {
        List<String> s = new ArrayList<>();
        for (double x : v) {
            s.add(String.format(Locale.ROOT, format, x));
        }
        return String.join(" ", s);
    }

    static String render(String cluster, List<Map<String, Map<String, String>>> quietBy,
            List<Map<String, Map<String, String>>> noisyBy, String load0, List<String> loads, int rate, int size,
            int connRate, int seconds, int floodThreads, int pushStreams) {
        StringBuilder b = new StringBuilder();
        b.append("Noisy neighbours (issue 18) — ").append(Instant.now()).append('\n');
        b.append("machine: ").append(Runtime.getRuntime().availableProcessors())
                .append(" cores, shared with other work; load average at start ").append(load0)
                .append("; 1-min load after each round: ").append(String.join(", ", loads)).append('\n');
        b.append("mesh: cluster ").append(cluster).append(", pods quiet and noisy on node 1, quiet's server and "
                + "noisy's sink on node 2, every connection captured (eBPF) and carried over HBONE by the two agents\n");
        b.append(String.format(Locale.ROOT, "quiet: %d req/s of %d B on one connection + %d new connections/s "
                + "(%d B each way), coordinated omission corrected; %d s per phase%n", rate, size, connRate, size,
                seconds));
        b.append(String.format(Locale.ROOT, "noisy: flood = %d threads connect/1-byte echo/close as fast as they "
                + "can; push = %d connections writing to a sink at full speed; solo = the push with quiet idle%n",
                floodThreads, pushStreams));
        b.append(String.format(Locale.ROOT, "%d rounds, each: alone, flood, push, solo (after a warm-up flood and "
                + "push); each noise's ratio is to the same round's alone%n%n", quietBy.size()));
        b.append(String.format(Locale.ROOT, "%-5s %-6s %-5s %10s %10s %10s %10s %8s   %s%n", "round", "phase", "quiet",
                "p50 ms", "p99 ms", "p99.9 ms", "p99/alone", "failed", "noisy achieved"));
        for (int i = 0; i < quietBy.size(); i++) {
            for (String phase : List.of("alone", "flood", "push", "solo")) {
                Map<String, String> q = quietBy.get(i).get(phase);
                Map<String, String> n = noisyBy.get(i).get(phase);
                String achieved = switch (phase) {
                    case "flood" -> n.get("per_second") + " conn/s (" + n.get("failed") + " failed of "
                            + n.get("attempts_per_second") + " attempts/s)";
                    case "push", "solo" -> n.get("MiBps") + " MiB/s (" + n.get("failed") + " streams failed)";
                    default -> "-";
                };
                if (phase.equals("solo")) {
                    b.append(String.format(Locale.ROOT, "%-5d %-6s %-5s %10s %10s %10s %10s %8s   %s%n", i + 1,
                            phase, "idle", "-", "-", "-", "-", "-", achieved));
                    continue;
                }
                for (String kind : List.of("rr", "conn")) {
                    double p99 = num(q, kind + "_p99_us");
                    double ratio = p99 / num(quietBy.get(i).get("alone"), kind + "_p99_us");
                    b.append(String.format(Locale.ROOT, "%-5d %-6s %-5s %10.2f %10.2f %10.2f %10.2f %8s   %s%n",
                            i + 1, phase, kind, num(q, kind + "_p50_us") / 1e3, p99 / 1e3, num(q, kind + "_p999_us")
                                    / 1e3,
                            ratio, q.get(kind + "_failed"), kind.equals("rr") ? achieved : ""));
                }
            }
        }
        b.append("\nsummary (median over the rounds; pass mark 2x):\n");
        for (String kind : List.of("rr", "conn")) {
            b.append(String.format(Locale.ROOT, "  quiet %-4s p99 alone ms: %s (median %.2f)%n", kind,
                    list(Arrays.stream(of(
                            quietBy, "alone", kind + "_p99_us")).map(x -> x / 1e3).toArray(), "%.1f"),
                    median(of(quietBy, "alone", kind
                            + "_p99_us")) / 1e3));
            for (String noise : List.of("flood", "push")) {
                double m = medianRatio(quietBy, noise, kind);
                b.append(String.format(Locale.ROOT, "  %-5s %-4s p99 ratio per round: %s -> median %.2fx %s%n", noise,
                        kind, list(ratios(quietBy, noise, kind), "%.2f"), m,
                        m <= 2 ? "(within 2x)" : "(NOT within 2x)"));
            }
        }
        double solo = median(of(noisyBy, "solo", "MiBps"));
        double beside = median(of(noisyBy, "push", "MiBps"));
        b.append(String.format(Locale.ROOT, "  noisy's push MiB/s alone (solo): %s (median %.1f); beside quiet: %s "
                + "(median %.1f, %.2f of alone)%n", list(of(noisyBy, "solo", "MiBps"), "%.1f"), solo,
                list(of(noisyBy,
                        "push", "MiBps"), "%.1f"),
                beside, beside / solo));
        b.append(String.format(Locale.ROOT, "  noisy's flood conn/s beside quiet: %s%n", list(of(noisyBy, "flood",
                "per_second"), "%.0f")));
        b.append("(rr: the requests on one connection; conn: the new connections, latency from the intended start to "
                + "the echo's last byte, connect included; failed: refused, reset or unanswered)\n");
        b.append("\nraw:\n");
        for (int i = 0; i < quietBy.size(); i++) {
            int r = i + 1;
            quietBy.get(i).forEach((k, v) -> b.append("  ").append(r).append(" quiet ").append(k).append(": ")
                    .append(v).append('\n'));
            noisyBy.get(i).forEach((k, v) -> b.append("  ").append(r).append(" noisy ").append(k).append(": ")
                    .append(v).append('\n'));
        }
        return b.toString();
    }
}
