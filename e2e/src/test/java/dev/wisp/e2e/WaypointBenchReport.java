package dev.wisp.e2e;

import static dev.wisp.e2e.WaypointBenchE2eTest.format;

import dev.wisp.e2e.WaypointBenchE2eTest.Measured;
import dev.wisp.e2e.WaypointBenchE2eTest.Route;
import java.util.List;
import java.util.Map;

/** The waypoint benchmark's report ({@link WaypointBenchE2eTest}): conditions, one table per protocol, ratios. */
final class WaypointBenchReport {
    private WaypointBenchReport() {}

    /** The last step before the first one that failed a request or passed the bound (null: the first did). */
    static Measured max(List<Measured> up, double bound) {
        Measured best = null;
        for (int i = 0; i < up.size(); i++) {
            Measured m = up.get(i);
            int requests = WaypointBenchE2eTest.STEPS.get(i) * WaypointBenchE2eTest.STEP_SECONDS;
            if (!m.clean(requests) || m.p99() > bound) {
                break;
            }
            best = m;
        }
        return best;
    }

    static int rate(Measured m) {
        return m == null ? 0 : Integer.parseInt(m.load().get("rq_requests")) / WaypointBenchE2eTest.STEP_SECONDS;
    }

    /** Requests per second per proxy core at {@code m}: its rate over the proxy's CPU seconds per second. */
    static double perCore(Measured m, boolean wholePath) {
        double cpu = m == null ? 0 : wholePath ? m.pathCpu() : m.proxyCpu();
        return cpu <= 0 ? 0 : rate(m) / (cpu / m.wall());
    }

    static String render(List<Route> routes, Map<String, Measured> base, Map<String, List<Measured>> steps,
            Map<String, Double> bounds, String load0, List<String> loads) {
        StringBuilder b = new StringBuilder();
        int baseRequests = WaypointBenchE2eTest.BASE_RATE * WaypointBenchE2eTest.BASE_SECONDS;
        b.append("Waypoint benchmark (issue 13) — ").append(WaypointBenchE2eTest.now()).append('\n');
        b.append("machine: ").append(Runtime.getRuntime().availableProcessors()).append(
                " cores, shared with other work; load average at start ").append(load0).append("; ").append(String
                        .join(", ", loads))
                .append('\n');
        b.append("load: GET / answered with 1 KiB, ").append(WaypointBenchE2eTest.CONNECTIONS).append(
                " connections, fixed rate, latency from each request's intended send time (coordinated omission "
                        + "corrected); h1 = HTTP/1.1 (one request at a time per connection), h2 = h2c prior "
                        + "knowledge (a stream per request)\n");
        b.append(format("low rate: %d req/s for %d s after %d s of warm-up; step-up: %s req/s, %d s each, until "
                + "p99 passes the bound or a request fails\n", WaypointBenchE2eTest.BASE_RATE,
                WaypointBenchE2eTest.BASE_SECONDS, WaypointBenchE2eTest.WARM_SECONDS, WaypointBenchE2eTest.STEPS,
                WaypointBenchE2eTest.STEP_SECONDS));
        b.append("bound: 2 x the highest low-rate p99 of the paths (per protocol), so each starts under it; "
                + "max = the last step under it with every request answered 200\n");
        b.append("paths (servers: nginx, 1 worker, in pods server/backend on node 2; no WireGuard):\n");
        for (Route r : routes) {
            b.append(format("  %-12s %s\n", r.name(), r.where()));
        }
        b.append("CPU: utime+stime of the proxy's processes (/proc/PID/stat; waypoint = the waypoint JVM, path = "
                + "waypoint + both agents, haproxy-mtls = its three haproxies), machine = every core's busy time (/proc/stat, other work included)\n");
        for (String proto : bounds.keySet()) {
            double bound = bounds.get(proto);
            b.append('\n').append(format("%s: low rate, and max rate with p99 <= %.0f us\n", proto, bound));
            b.append(format("%-12s %8s %8s %9s %6s %9s %9s %9s %8s %9s %8s %10s %10s\n", "path", "p50 us", "p99 us",
                    "p99.9 us", "failed", "proxy ms", "path ms", "machine", "RSS MiB", "max/s", "cores",
                    "req/s/core", "path/core"));
            b.append(format("%-12s %8s %8s %9s %6s %9s %9s %9s %8s %9s %8s %10s %10s\n", "", "", "", "", "",
                    "/1k req", "/1k req", "ms/1k", "", "", "at max", "proxy", "with agents"));
            for (Route r : routes) {
                Measured m = base.get(r.name() + " " + proto);
                Measured top = max(steps.get(r.name() + " " + proto), bound);
                boolean proxied = !r.name().equals("direct");
                int last = WaypointBenchE2eTest.STEPS.getLast();
                b.append(format("%-12s %8s %8s %9s %6s %9s %9s %9.1f %8s %9s %8s %10s %10s\n", r.name(), m.load().get(
                        "rq_p50_us"), m.load().get("rq_p99_us"), m.load().get("rq_p999_us"),
                        (baseRequests - Integer
                                .parseInt(m.load().getOrDefault("ok", "0"))),
                        proxied
                                ? format("%.1f", m.perThousand(m.proxyCpu(),
                                        baseRequests))
                                : "-",
                        proxied
                                ? format("%.1f", m.perThousand(m.pathCpu(),
                                        baseRequests))
                                : "-",
                        m.perThousand(m.machineCpu(), baseRequests),
                        proxied ? format("%.1f", m.proxyRss()) : "-", top == null
                                ? "none"
                                : (rate(top) == last
                                        ? ">="
                                        : "") + rate(top),
                        top == null || !proxied
                                ? "-"
                                : format("%.2f", top.proxyCpu() / top
                                        .wall()),
                        top == null || !proxied ? "-" : format("%.0f", perCore(top, false)),
                        top == null || !proxied ? "-" : format("%.0f", perCore(top, true))));
            }
            if (base.containsKey("direct " + proto)) {
                double tight = 2 * base.get("direct " + proto).p99();
                b.append(format("max rate with p99 <= 2 x direct's low-rate p99 (%.0f us):", tight));
                for (Route r : routes) {
                    b.append(format(" %s %d/s", r.name(), rate(max(steps.get(r.name() + " " + proto), tight))));
                }
                b.append(" (0: not even the first step)\n");
            }
            if (proto.equals("h2")) {
                b.append("h2 requests that waited for a stream (the server's concurrent-stream limit), low rate:");
                for (Route r : routes) {
                    b.append(format(" %s %s", r.name(), base.get(r.name() + " h2").load().getOrDefault("waited", "-")));
                }
                b.append('\n');
            }
            if (!steps.containsKey("waypoint " + proto)) {
                continue;
            }
            Measured wp = max(steps.get("waypoint " + proto), bound);
            for (String other : List.of("haproxy", "haproxy-mtls", "nginx")) {
                if (!steps.containsKey(other + " " + proto)) {
                    continue;
                }
                Measured o = max(steps.get(other + " " + proto), bound);
                Measured wb = base.get("waypoint " + proto);
                Measured ob = base.get(other + " " + proto);
                b.append(format("ratio waypoint/%s (same run): p99 %.2f, proxy CPU/1k req %.2f, req/s per proxy "
                        + "core %s\n", other, wb.p99() / ob.p99(), wb.proxyCpu() / ob.proxyCpu(),
                        wp == null
                                || o == null ? "-" : format("%.2f", perCore(wp, false) / perCore(o, false))));
            }
        }
        b.append("\nsteps (rate: p99 us, failed, proxy cores):\n");
        steps.forEach((k, up) -> {
            b.append(format("  %-17s", k));
            for (int i = 0; i < up.size(); i++) {
                Measured m = up.get(i);
                b.append(format(" %d: %s/%s/%.2f", WaypointBenchE2eTest.STEPS.get(i), m.load().get("rq_p99_us"), m
                        .load().get("rq_failed"), m.proxyCpu() / m.wall()));
            }
            b.append('\n');
        });
        return b.toString();
    }
}
