package dev.wisp.local.load;

import dev.wisp.local.load.AgentSampler.Sample;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * What a run's samples say: least-squares slopes per hour, and an SVG plot (one panel per figure,
 * one line per agent) that needs nothing but a browser.
 */
public final class LoadFigures {
    /** The plotted and summarised figures: label, unit divisor, unit, accessor. */
    public record Figure(String label, double divisor, String unit, ToDoubleFunction<Sample> value) {}

    public static final List<Figure> FIGURES = List.of(new Figure("RSS", 1 << 20, "MiB", Sample::rss), new Figure(
            "heap after GC", 1 << 20, "MiB", Sample::heapAfterGc),
            new Figure("direct memory (JVM + Netty)", 1 << 20,
                    "MiB", s -> s.direct() + Math.max(0, s.nettyDirect())),
            new Figure("open fds", 1, "fds", Sample::fds), new Figure("threads", 1, "threads", Sample::threads));

    private static final String[] COLOURS = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};

    private LoadFigures() {}

    /**
     * The least-squares slope of {@code y} against {@code t} (seconds) in units per hour, over the
     * points where {@code y} is a number; NaN with fewer than two such points.
     */
    public static double slopePerHour(List<Sample> samples, ToDoubleFunction<Sample> y) {
        double n = 0, st = 0, sy = 0, stt = 0, sty = 0;
        for (Sample s : samples) {
            double v = y.applyAsDouble(s);
            if (Double.isNaN(v)) {
                continue;
            }
            double t = s.t() / 3600.0;
            n++;
            st += t;
            sy += v;
            stt += t * t;
            sty += t * v;
        }
        double den = n * stt - st * st;
        return n < 2 || den == 0 ? Double.NaN : (n * sty - st * sy) / den;
    }

    /** The samples of each agent, by node name, in order of first appearance. */
    public static Map<String, List<Sample>> byNode(List<Sample> samples) {
        Map<String, List<Sample>> m = new LinkedHashMap<>();
        for (Sample s : samples) {
            m.computeIfAbsent(s.node(), k -> new ArrayList<>()).add(s);
        }
        return m;
    }

    /**
     * One line per agent and figure: first, last, mean and the slope per hour over the samples with
     * {@code t >= from} (the steady part of a run).
     */
    public static List<String> summary(List<Sample> samples, double from) {
        List<String> out = new ArrayList<>();
        for (var e : byNode(samples).entrySet()) {
            List<Sample> steady = e.getValue().stream().filter(s -> s.t() >= from).toList();
            if (steady.isEmpty()) {
                continue;
            }
            for (Figure f : FIGURES) {
                double mean = steady.stream().mapToDouble(f.value()).filter(v -> !Double.isNaN(v)).average().orElse(
                        Double.NaN);
                out.add(String
                        .format(Locale.ROOT,
                                "%s %-27s first %9.1f  last %9.1f  mean %9.1f  max %9.1f  slope %+9.2f %s/hour",
                                e.getKey(), f.label(), f.value().applyAsDouble(steady.getFirst()) / f.divisor(),
                                f.value()
                                        .applyAsDouble(steady.getLast()) / f.divisor(),
                                mean / f.divisor(),
                                steady.stream().mapToDouble(f.value()).filter(v -> !Double.isNaN(v)).max()
                                        .orElse(Double.NaN) / f.divisor(),
                                slopePerHour(steady, f.value()) / f.divisor(), f.unit()));
            }
        }
        return out;
    }

    /**
     * An SVG document: one panel per {@link #FIGURES} entry, time in minutes on x, one coloured line
     * per agent; {@code marks} are vertical lines at those times (seconds) with their labels, e.g. the
     * control-plane restart.
     */
    public static String svg(String title, List<Sample> samples, Map<String, Double> marks) {
        int w = 900, ph = 170, top = 40, left = 70, right = 20, gap = 30;
        int h = top + FIGURES.size() * (ph + gap) + 20;
        double tmax = Math.max(1, samples.stream().mapToDouble(Sample::t).max().orElse(1));
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">%n",
                w, h));
        b.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"20\" font-size=\"14\">%s</text>%n", left, esc(title)));
        Map<String, List<Sample>> nodes = byNode(samples);
        int legend = 0;
        for (String node : nodes.keySet()) {
            b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"34\" fill=\"%s\">%s</text>%n", w - right - 200 + 90
                    * legend, COLOURS[legend % COLOURS.length], esc(node)));
            legend++;
        }
        int y0 = top;
        for (Figure f : FIGURES) {
            double max = samples.stream().mapToDouble(f.value()).filter(v -> !Double.isNaN(v)).max().orElse(1)
                    / f.divisor();
            max = max <= 0 ? 1 : max * 1.1;
            int pw = w - left - right;
            b.append(String.format(Locale.ROOT,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>%n", left, y0,
                    pw, ph));
            b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s (%s)</text>%n", left + 4, y0 + 13, esc(
                    f.label()), f.unit()));
            for (int i = 0; i <= 4; i++) {
                double v = max * i / 4;
                int y = y0 + ph - (int) Math.round(ph * i / 4.0);
                b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.0f</text>%n",
                        left - 4, y + 4, v));
            }
            for (int i = 0; i <= 6; i++) {
                double t = tmax * i / 6;
                int x = left + (int) Math.round(pw * i / 6.0);
                b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.1f min</text>%n",
                        x, y0 + ph + 13, t / 60));
            }
            for (var m : marks.entrySet()) {
                int x = left + (int) Math.round(pw * m.getValue() / tmax);
                b.append(String.format(Locale.ROOT,
                        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#f80\" stroke-dasharray=\"4 3\"/>"
                                + "<text x=\"%d\" y=\"%d\" fill=\"#f80\">%s</text>%n",
                        x, y0, x, y0 + ph, x + 3, y0 + 26, esc(m.getKey())));
            }
            int c = 0;
            for (List<Sample> series : nodes.values()) {
                StringBuilder pts = new StringBuilder();
                for (Sample s : series) {
                    double v = f.value().applyAsDouble(s) / f.divisor();
                    if (!Double.isNaN(v)) {
                        pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", left + pw * s.t() / tmax, y0 + ph - ph * v
                                / max));
                    }
                }
                b.append(String.format(Locale.ROOT,
                        "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"%s\"/>%n", COLOURS[c++
                                % COLOURS.length],
                        pts.toString().trim()));
            }
            y0 += ph + gap;
        }
        return b.append("</svg>\n").toString();
    }

    /**
     * {@code LoadFigures RESULTS FROM_S TO_S [MARK=SECONDS…]}: the summary of a results file's rows
     * between two times (e.g. of a run that was cut short, whose own summary was never written),
     * printed, and its plot written beside it ({@code .svg}).
     */
    public static void main(String[] args) throws java.io.IOException {
        java.nio.file.Path file = java.nio.file.Path.of(args[0]);
        double from = Double.parseDouble(args[1]), to = Double.parseDouble(args[2]);
        List<Sample> rows = AgentSampler.read(file).stream().filter(r -> r.t() <= to).toList();
        summary(rows, from).forEach(System.out::println);
        Map<String, Double> marks = new LinkedHashMap<>();
        for (int i = 3; i < args.length; i++) {
            marks.put(args[i].substring(0, args[i].indexOf('=')), Double.parseDouble(args[i].substring(args[i]
                    .indexOf('=') + 1)));
        }
        java.nio.file.Files.writeString(java.nio.file.Path.of(file.toString().replaceAll("\\.txt$", "") + ".svg"), svg(
                file.getFileName().toString(), rows, marks));
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
