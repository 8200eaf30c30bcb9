package dev.wisp.node.wireguard;

import dev.wisp.wireguard.Prefix;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's routing for WireGuard, programmed with {@code ip(8)} in the agent's network namespace.
 * Everything lives in two tables of our own, looked up by policy rules before {@code main}, so that
 * the node's own routes are never edited:
 * <ul>
 * <li>table {@code T} (rule preference 5200, all traffic): other nodes' pod CIDRs {@code dev IFACE};
 * in strict mode also {@code unreachable} for each of them and for the cluster CIDRs at metric 4096
 * (used only while the device route is missing: no peer, no device), and {@code throw} for this
 * node's own pod CIDRs (back to {@code main});
 * <li>table {@code T+1} (preference 5199, TCP to or from the HBONE port), when HBONE goes through
 * WireGuard: other nodes' addresses {@code dev IFACE src SELF}, and in strict mode unreachable.
 * </ul>
 * A lookup that finds nothing in our tables goes on to {@code main}: traffic between node
 * addresses (including WireGuard's own UDP) is not affected.
 *
 * <p>On close in strict mode the rules and the unreachable routes stay: while the agent is away,
 * traffic for other nodes' pods is dropped rather than routed in clear. Not thread-safe: the owner
 * serialises calls.
 */
final class Routes {
    private static final Logger LOG = LoggerFactory.getLogger(Routes.class);
    static final int RULE_PREFERENCE = 5200;
    static final int UNREACHABLE_METRIC = 4096;
    private final String iface;
    private final int table;
    private final int hbonePort;
    private final InetAddress self;
    /** Installed routes: the key is the {@code ip route} spec without the verb. */
    private final Map<String, List<String>> installed = new LinkedHashMap<>();

    Routes(String iface, int table, int hbonePort, InetAddress self) {
        this.iface = iface;
        this.table = table;
        this.hbonePort = hbonePort;
        this.self = self;
    }

    /** Installs the policy rules (both families), replacing any left by a previous agent. */
    void installRules(boolean hbone) throws IOException {
        for (String family : List.of("-4", "-6")) {
            removeRules(family);
            ip(family, "rule", "add", "pref", String.valueOf(RULE_PREFERENCE), "lookup", String.valueOf(table));
            if (hbone) {
                for (String dir : List.of("dport", "sport")) {
                    ip(family, "rule", "add", "pref", String.valueOf(RULE_PREFERENCE - 1), "ipproto", "tcp", dir,
                            String.valueOf(hbonePort), "lookup", String.valueOf(table + 1));
                }
            }
        }
    }

    private void removeRules(String family) {
        for (int pref : new int[]{RULE_PREFERENCE, RULE_PREFERENCE - 1}) {
            // Each "del" removes one rule of that preference; a bounded number of leftovers.
            for (int i = 0; i < 8 && tryIp(family, "rule", "del", "pref", String.valueOf(pref)); i++) {
                // removed one
            }
        }
    }

    /**
     * Makes the tables hold exactly what {@code plan} asks for: removes what this agent installed and
     * the plan no longer has, and installs (with {@code replace}, so leftovers of a previous agent are
     * taken over) what it has not installed yet.
     */
    void apply(PeerPlan plan) throws IOException {
        Map<String, List<String>> desired = new LinkedHashMap<>();
        for (Prefix p : plan.local()) {
            put(desired, List.of("throw", p.toString(), "table", String.valueOf(table)));
        }
        for (Prefix p : plan.unreachable()) {
            put(desired, List.of("unreachable", p.toString(), "table", String.valueOf(table), "metric", String.valueOf(
                    UNREACHABLE_METRIC)));
        }
        for (Prefix p : plan.routed()) {
            put(desired, List.of(p.toString(), "dev", iface, "table", String.valueOf(table)));
        }
        for (Prefix p : plan.hboneUnreachable()) {
            put(desired, List.of("unreachable", p.toString(), "table", String.valueOf(table + 1), "metric", String
                    .valueOf(UNREACHABLE_METRIC)));
        }
        for (Prefix p : plan.hboneRouted()) {
            List<String> spec = new ArrayList<>(List.of(p.toString(), "dev", iface, "table", String.valueOf(table
                    + 1)));
            if (family(p.address()).equals(family(self))) {
                spec.addAll(List.of("src", self.getHostAddress()));
            }
            put(desired, spec);
        }
        for (var e : new ArrayList<>(installed.entrySet())) {
            if (!desired.containsKey(e.getKey())) {
                List<String> del = new ArrayList<>(List.of(familyOf(e.getValue()), "route", "del"));
                del.addAll(e.getValue());
                tryIp(del.toArray(String[]::new));
                installed.remove(e.getKey());
            }
        }
        for (var e : desired.entrySet()) {
            if (installed.containsKey(e.getKey())) {
                // Installed by this agent and unchanged: no process for it (a sync comes with every
                // index change, and each ip(8) run costs a fork and exec).
                continue;
            }
            List<String> cmd = new ArrayList<>(List.of(familyOf(e.getValue()), "route", "replace"));
            cmd.addAll(e.getValue());
            ip(cmd.toArray(String[]::new));
            installed.put(e.getKey(), e.getValue());
        }
    }

    /** Sets the device's link up. */
    static void link(String iface) throws IOException {
        ip("link", "set", "dev", iface, "up");
    }

    /** Strict: keeps rules and unreachable routes (fail closed); otherwise removes everything of ours. */
    void close(boolean strict) {
        if (strict) {
            return;
        }
        for (String family : List.of("-4", "-6")) {
            removeRules(family);
            tryIp(family, "route", "flush", "table", String.valueOf(table));
            tryIp(family, "route", "flush", "table", String.valueOf(table + 1));
        }
        installed.clear();
    }

    private static void put(Map<String, List<String>> m, List<String> spec) {
        m.put(String.join(" ", spec), spec);
    }

    private static String familyOf(List<String> spec) {
        String prefix = spec.get(0).equals("throw") || spec.get(0).equals("unreachable") ? spec.get(1) : spec.get(0);
        return prefix.indexOf(':') >= 0 ? "-6" : "-4";
    }

    private static String family(InetAddress a) {
        return a instanceof Inet6Address ? "-6" : "-4";
    }

    private static void ip(String... args) throws IOException {
        Result r = run(args);
        if (r.exit != 0) {
            throw new IOException("'ip " + String.join(" ", args) + "' failed (" + r.exit + "): " + r.err.strip()
                    + " (the agent needs CAP_NET_ADMIN in the node's network namespace)");
        }
    }

    private static boolean tryIp(String... args) {
        try {
            return run(args).exit == 0;
        } catch (IOException e) {
            LOG.debug("ip {}: {}", String.join(" ", args), e.toString());
            return false;
        }
    }

    private record Result(int exit, String err) {}

    private static Result run(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("ip");
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("'" + String.join(" ", cmd) + "' did not finish within 10 s");
            }
            return new Result(p.exitValue(), new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted while running " + String.join(" ", cmd), e);
        }
    }
}
