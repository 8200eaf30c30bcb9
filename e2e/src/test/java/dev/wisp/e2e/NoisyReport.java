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

    /** The load of every phase: quiet's (and direct's), and the noisy pod's. */
    record Load(int rate, int size, int connRate, int seconds, int floodThreads, int pushStreams) {}

    /**
     * Each round's ratio of quiet's excess under {@code noise} to the direct path's: (mesh p99 under
     * the noise / mesh p99 alone) / (direct p99 under the noise / direct p99 alone); what the mesh adds
     * beyond what the machine does to a process that shares its CPUs with the noise.
     */
    static double[] excess(List<Map<String, Map<String, String>>> quietBy,
            List<Map<String, Map<String, String>>> directBy, String noise, String kind) {
        double[] mesh = ratios(quietBy, noise, kind);
        double[] direct = ratios(directBy, noise, kind);
        double[] out = new double[mesh.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = mesh[i] / direct[i];
        }
        return out;
    }

    /**
     * Per phase, the median over the rounds of each watched process's CPU time and run-queue wait (ms
     * per second of the phase, all threads), and of its busiest thread's ({@link SchedStat}).
     */
    static String scheduling(List<String> phases, List<Map<String, Map<String, String>>> noisyBy,
            List<String> watched) {
        StringBuilder b = new StringBuilder("\nscheduling (median over the rounds, ms per second of the phase: "
                + "cpu = on a CPU (the process), wait = runnable on a run queue (its live threads); top = the "
                + "thread that ran most, delay = its mean wait on a run queue per time it was scheduled, us):\n");
        b.append(String.format(Locale.ROOT, "  %-9s %-7s %8s %8s   %-16s %8s %8s %8s%n", "phase", "process", "cpu",
                "wait", "top thread", "cpu", "wait", "delay"));
        for (String phase : phases) {
            for (String w : watched) {
                String top = noisyBy.getLast().get(phase).getOrDefault(w + "_top", "-");
                b.append(String.format(Locale.ROOT, "  %-9s %-7s %8.1f %8.1f   %-16s %8.1f %8.1f %8.0f%n", phase,
                        w, median(of(noisyBy, phase, w + "_cpu_ms")), median(of(noisyBy, phase, w + "_wait_ms")),
                        top, median(of(noisyBy, phase, w + "_top_cpu_ms")), median(of(noisyBy, phase, w
                                + "_top_wait_ms")),
                        median(of(noisyBy, phase, w + "_top_delay_us"))));
            }
        }
        return b.toString();
    }

    static String render(String cluster, List<String> phases, List<Map<String, Map<String, String>>> quietBy,
            List<Map<String, Map<String, String>>> directBy, List<Map<String, Map<String, String>>> noisyBy,
            String load0, List<String> loads, Load l, List<String> watched, String cpuGroups) {
        StringBuilder b = new StringBuilder();
        b.append("Noisy neighbours (issue 18) — ").append(Instant.now()).append('\n');
        b.append("machine: ").append(Runtime.getRuntime().availableProcessors())
                .append(" cores, shared with other work; load average at start ").append(load0)
                .append("; 1-min load after each round: ").append(String.join(", ", loads)).append('\n');
        b.append("mesh: cluster ").append(cluster).append(", pods quiet and noisy on node 1, quiet's server and "
                + "noisy's sink on node 2, every connection captured (eBPF) and carried over HBONE by the two agents\n");
        b.append("direct: pod direct (node 1) to pod directserver (node 2), neither captured (no mesh): the same "
                + "load as quiet's at the same time, to tell the machine's share of the harm from the mesh's\n");
        b.append("CPU groups (agents, pods): ").append(cpuGroups).append('\n');
        b.append(String.format(Locale.ROOT, "quiet: %d req/s of %d B on one connection + %d new connections/s "
                + "(%d B each way), coordinated omission corrected; %d s per phase%n", l.rate, l.size, l.connRate,
                l.size, l.seconds));
        b.append(String.format(Locale.ROOT, "noisy: flood = %d threads connect/1-byte echo/close as fast as they "
                + "can; push = %d connections writing to a sink at full speed; solo = the push with quiet idle; "
                + "-off: the same with both agents' fair share switched off (POST /fair/switch?on=0)%n", l.floodThreads,
                l.pushStreams));
        b.append(String.format(Locale.ROOT, "%d rounds, each: %s (after a warm-up flood and push); each noise's "
                + "ratio is to the same round's alone, on the same path%n%n", quietBy.size(),
                String.join(", ",
                        phases)));
        b.append(String.format(Locale.ROOT, "%-5s %-9s %-6s %-4s %10s %10s %10s %10s %7s   %s%n", "round", "phase",
                "path", "kind", "p50 ms", "p99 ms", "p99.9 ms", "p99/alone", "failed", "noisy achieved"));
        for (int i = 0; i < quietBy.size(); i++) {
            for (String phase : phases) {
                Map<String, String> n = noisyBy.get(i).get(phase);
                String achieved = phase.startsWith("flood")
                        ? n.get("per_second") + " conn/s (" + n.get("failed")
                                + " failed of " + n.get("attempts_per_second") + " attempts/s)"
                        : phase.equals("alone")
                                ? "-"
                                : n.get("MiBps") + " MiB/s (" + n.get("failed")
                                        + " streams failed)";
                if (phase.startsWith("solo")) {
                    b.append(String.format(Locale.ROOT, "%-5d %-9s %-6s %-4s %10s %10s %10s %10s %7s   %s%n", i + 1,
                            phase, "idle", "-", "-", "-", "-", "-", "-", achieved));
                    continue;
                }
                for (var path : List.of(Map.entry("mesh", quietBy.get(i)), Map.entry("direct", directBy.get(i)))) {
                    for (String kind : List.of("rr", "conn")) {
                        Map<String, String> q = path.getValue().get(phase);
                        double p99 = num(q, kind + "_p99_us");
                        b.append(
                                String.format(Locale.ROOT, "%-5d %-9s %-6s %-4s %10.2f %10.2f %10.2f %10.2f %7s   %s%n",
                                        i + 1, phase, path.getKey(), kind, num(q, kind + "_p50_us") / 1e3, p99 / 1e3,
                                        num(q, kind + "_p999_us") / 1e3, p99 / num(path.getValue().get("alone"), kind
                                                + "_p99_us"),
                                        q.get(kind + "_failed"),
                                        path.getKey().equals("mesh") && kind.equals("rr") ? achieved : ""));
                    }
                }
            }
        }
        b.append("\nsummary (median over the rounds; pass mark 2x; excess = mesh ratio / direct ratio):\n");
        for (String kind : List.of("rr", "conn")) {
            for (var path : List.of(Map.entry("mesh", quietBy), Map.entry("direct", directBy))) {
                double[] alone = Arrays.stream(of(path.getValue(), "alone", kind + "_p99_us")).map(x -> x / 1e3)
                        .toArray();
                b.append(String.format(Locale.ROOT, "  %-6s %-4s p99 alone ms: %s (median %.2f)%n", path.getKey(),
                        kind, list(alone, "%.1f"), median(alone)));
            }
            for (String noise : phases.stream().filter(p -> !p.equals("alone") && !p.startsWith("solo")).toList()) {
                double m = medianRatio(quietBy, noise, kind);
                b.append(String.format(Locale.ROOT, "  %-9s %-4s p99 ratio per round: mesh %s -> median %.2fx %s; "
                        + "direct %s -> median %.2fx; excess median %.2fx%n", noise, kind,
                        list(ratios(quietBy, noise,
                                kind), "%.2f"),
                        m, m <= 2 ? "(within 2x)" : "(NOT within 2x)", list(ratios(directBy,
                                noise, kind), "%.2f"),
                        medianRatio(directBy, noise, kind), median(excess(
                                quietBy, directBy, noise, kind))));
            }
        }
        for (String off : phases.contains("solo-off") ? List.of("", "-off") : List.of("")) {
            double solo = median(of(noisyBy, "solo" + off, "MiBps"));
            double beside = median(of(noisyBy, "push" + off, "MiBps"));
            b.append(String.format(Locale.ROOT, "  noisy's push%s MiB/s alone (solo%s): %s (median %.1f); beside "
                    + "quiet: %s (median %.1f, %.2f of alone)%n", off, off,
                    list(of(noisyBy, "solo" + off, "MiBps"),
                            "%.1f"),
                    solo, list(of(noisyBy, "push" + off, "MiBps"), "%.1f"), beside, beside / solo));
            b.append(String.format(Locale.ROOT, "  noisy's flood%s conn/s beside quiet: %s%n", off, list(of(noisyBy,
                    "flood" + off, "per_second"), "%.0f")));
        }
        b.append(scheduling(phases, noisyBy, watched));
        b.append("(rr: the requests on one connection; conn: the new connections, latency from the intended start to "
                + "the echo's last byte, connect included; failed: refused, reset or unanswered)\n");
        b.append("\nraw:\n");
        for (int i = 0; i < quietBy.size(); i++) {
            int r = i + 1;
            for (var by : List.of(Map.entry("quiet", quietBy), Map.entry("direct", directBy), Map.entry("noisy",
                    noisyBy))) {
                by.getValue().get(i).forEach((k, v) -> b.append("  ").append(r).append(' ').append(by.getKey())
                        .append(' ').append(k).append(": ").append(v).append('\n'));
            }
        }
        return b.toString();
    }
}
