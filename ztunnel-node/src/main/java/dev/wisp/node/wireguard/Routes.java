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
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.concurrent.CompletableFuture;
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
 * <p>Each change is one {@code ip -force -batch} process (per family for rules), whose failing
 * lines are told apart by its "Command failed -:N" messages: a failed removal is harmless, a failed
 * addition an error naming the line.
 *
 * <p>On close in strict mode the rules and the unreachable routes stay: while the agent is away,
 * traffic for other nodes' pods is dropped rather than routed in clear. Not thread-safe: the owner
 * serialises calls.
 */
public final class Routes {
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

    /**
     * Installs the policy rules (both families), replacing any left by a previous agent: one
     * {@code ip} process per family.
     */
    void installRules(boolean hbone) throws IOException {
        for (String family : List.of("-4", "-6")) {
            List<String> lines = ruleRemovals();
            int removals = lines.size();
            lines.add("rule add pref " + RULE_PREFERENCE + " lookup " + table);
            if (hbone) {
                for (String dir : List.of("dport", "sport")) {
                    lines.add("rule add pref " + (RULE_PREFERENCE - 1) + " ipproto tcp " + dir + " " + hbonePort
                            + " lookup " + (table + 1));
                }
            }
            Batch b = batch(family, lines);
            for (int line : b.failed()) {
                if (line > removals) {
                    throw b.failure(family, lines, line);
                }
            }
        }
    }

    /**
     * Each "del" removes one rule of that preference, and a failing one (none left) is harmless: a
     * bounded number of leftovers.
     */
    private static List<String> ruleRemovals() {
        List<String> lines = new ArrayList<>();
        for (int pref : new int[]{RULE_PREFERENCE, RULE_PREFERENCE - 1}) {
            for (int i = 0; i < 8; i++) {
                lines.add("rule del pref " + pref);
            }
        }
        return lines;
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
        // One ip process for all of it (each run is a fork and exec, seconds in all on a loaded
        // machine when it was one per route); the family follows from each line's prefix.
        List<String> lines = new ArrayList<>();
        for (String key : new ArrayList<>(installed.keySet())) {
            if (!desired.containsKey(key)) {
                lines.add("route del " + key);
                installed.remove(key);
            }
        }
        int removals = lines.size();
        List<String> added = new ArrayList<>();
        for (var e : desired.entrySet()) {
            if (!installed.containsKey(e.getKey())) {
                // Installed by this agent and unchanged: nothing to run (a sync comes with every
                // index change).
                lines.add("route replace " + e.getKey());
                added.add(e.getKey());
            }
        }
        if (lines.isEmpty()) {
            return;
        }
        Batch b = batch(null, lines);
        IOException failure = null;
        for (int i = 0; i < added.size(); i++) {
            int line = removals + i + 1;
            if (b.failed().contains(line)) {
                failure = failure == null ? b.failure("", lines, line) : failure;
            } else {
                installed.put(added.get(i), desired.get(added.get(i)));
            }
        }
        if (failure != null) {
            throw failure;
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
            List<String> lines = ruleRemovals();
            lines.add("route flush table " + table);
            lines.add("route flush table " + (table + 1));
            try {
                batch(family, lines);
            } catch (IOException e) {
                LOG.warn("WireGuard rules and tables {}/{} ({}) not removed: {}", table, table + 1, family, e
                        .getMessage());
            }
        }
        installed.clear();
    }

    private static void put(Map<String, List<String>> m, List<String> spec) {
        m.put(String.join(" ", spec), spec);
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

    private record Result(int exit, String err) {}

    /**
     * What one {@code ip -force -batch} run said: the numbers (from 1) of the lines that failed, and
     * its error output.
     */
    public record Batch(Set<Integer> failed, String err) {
        private static final Pattern FAILED_LINE = Pattern.compile("Command failed -:(\\d+)");

        static Batch of(String err) {
            Set<Integer> failed = new HashSet<>();
            Matcher m = FAILED_LINE.matcher(err);
            while (m.find()) {
                failed.add(Integer.parseInt(m.group(1)));
            }
            return new Batch(failed, err);
        }

        IOException failure(String family, List<String> lines, int line) {
            return new IOException("'ip " + (family.isEmpty() ? "" : family + " ") + lines.get(line - 1)
                    + "' failed: " + err.strip() + " (the agent needs CAP_NET_ADMIN in the node's network namespace)");
        }
    }

    /**
     * Runs every line (-force: a failing line does not stop the rest) in one ip process, in the
     * calling thread's network namespace (capture's transparent upstream runs it inside a pod's).
     */
    public static Batch batch(String family, List<String> lines) throws IOException {
        List<String> args = new ArrayList<>();
        if (family != null) {
            args.add(family);
        }
        args.addAll(List.of("-force", "-batch", "-"));
        Result r = run(String.join("\n", lines) + "\n", args.toArray(String[]::new));
        Batch b = Batch.of(r.err());
        if (r.exit() != 0 && b.failed().isEmpty()) {
            throw new IOException("'ip " + String.join(" ", args) + "' failed (" + r.exit() + "): " + r.err().strip());
        }
        return b;
    }

    private static Result run(String... args) throws IOException {
        return run("", args);
    }

    private static Result run(String input, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add("ip");
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        // Read while ip runs: a batch with many failing lines writes more than a pipe holds.
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return e.toString();
            }
        }, r -> Thread.ofVirtual().start(r));
        try {
            try (var in = p.getOutputStream()) {
                in.write(input.getBytes(StandardCharsets.US_ASCII));
            }
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("'" + String.join(" ", cmd) + "' did not finish within 10 s");
            }
            return new Result(p.exitValue(), err.join());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted while running " + String.join(" ", cmd), e);
        }
    }
}
