package dev.wisp.cli.flows;

import dev.wisp.base.flows.OneLinePerCall;
import dev.wisp.cli.UserException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code wisp flows}: the recent connections of a local cluster's node agents, merged by time. */
@Command(name = "flows", mixinStandardHelpOptions = true, description = {
        "Recent connections across a local cluster's nodes (the last 1,000 per node agent): time, node and side "
                + "(out: the client's agent, in: the server's), source workload and identity, destination "
                + "workload/service:port, verdict (allowed, denied by policy, failed), bytes client→server/"
                + "server→client, duration.",
        "One line per call: as the server's agent recorded it (it decided, and names the policy), as the "
                + "client's only when no server agent recorded it (outside the mesh, no route, unreachable).",
        "Needs root: each agent's admin API listens on 127.0.0.1:15000 inside its node's network namespace."})
public final class FlowsCommand implements Callable<Integer> {
    @Option(names = "--cluster", defaultValue = "demo", paramLabel = "NAME", description = "Local cluster (default: ${DEFAULT-VALUE}).")
    String cluster;

    @Option(names = "--node", paramLabel = "N", description = "Only this node (number or name, e.g. 2 or node2).")
    String node;

    @Option(names = "--from", paramLabel = "WHO", description = "Only connections from this client: NAMESPACE/WORKLOAD, WORKLOAD, or an IP address.")
    String from;

    @Option(names = "--to", paramLabel = "WHO", description = "Only connections to this server: NAMESPACE/WORKLOAD, WORKLOAD, a service (NAMESPACE/SERVICE), or an IP address.")
    String to;

    @Option(names = "--verdict", paramLabel = "V", description = "Only allowed, denied or failed connections.")
    String verdict;

    @Option(names = {"-n",
            "--namespace"}, paramLabel = "NS", description = "Only connections from or to this namespace.")
    String namespace;

    @Option(names = "--both-sides", description = "Print each call as each agent recorded it: out and in.")
    boolean bothSides;

    @Option(names = {"-f", "--follow"}, description = "Keep printing new connections every second until Ctrl-C.")
    boolean follow;

    /** Output formats. */
    enum Format {
        table, json
    }

    @Option(names = {"-o",
            "--output"}, defaultValue = "table", paramLabel = "FORMAT", description = "table or json (one object per line); default: ${DEFAULT-VALUE}.")
    Format output;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        if (!isRoot()) {
            throw new UserException("wisp flows needs root: it enters the nodes' network namespaces");
        }
        ClusterFlows flows;
        FlowFilter filter;
        try {
            filter = FlowFilter.parse(from, to, verdict, namespace);
        } catch (IllegalArgumentException e) {
            throw UserException.invalid(e.getMessage());
        }
        try {
            flows = ClusterFlows.of(cluster, node);
        } catch (IllegalArgumentException | IOException e) {
            throw new UserException(e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        FlowTable table = new FlowTable(ZoneId.systemDefault());
        if (output == Format.table) {
            out.println(table.header());
        }
        boolean failed;
        // What was last said about each failing node: in --follow, a failure is told once, not every second.
        Map<String, String> told = new HashMap<>();
        // Followed, a client record waits up to three polls for its call's server record.
        OneLinePerCall<FlowTable.Row> calls = FlowTable.oneLinePerCall(Duration.ofSeconds(3));
        do {
            ClusterFlows.Poll p = flows.poll();
            List<FlowTable.Row> rows = bothSides ? p.rows() : calls.offer(p.rows(), System.nanoTime(), !follow);
            for (FlowTable.Row r : rows) {
                if (!filter.test(r.flow())) {
                    continue;
                }
                out.println(output == Format.table ? table.row(r).stripTrailing() : FlowTable.json(r));
            }
            out.flush();
            failed = !p.failures().isEmpty();
            if (failed && follow && !exists(flows)) {
                throw new UserException("cluster '" + cluster + "' is gone (its network namespaces were removed)");
            }
            told.keySet().retainAll(p.failures().keySet());
            p.failures().forEach((node, why) -> {
                if (!why.equals(told.put(node, why))) {
                    err.println("error: " + why);
                }
            });
            err.flush();
            if (follow) {
                TimeUnit.SECONDS.sleep(1);
            }
        } while (follow);
        return failed ? 1 : 0;
    }

    private static boolean exists(ClusterFlows flows) {
        try {
            return flows.exists();
        } catch (IOException e) {
            return false;
        }
    }

    public static boolean isRoot() {
        try {
            return Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith("Uid:"))
                    .anyMatch(l -> l.substring(4).trim().split("\\s+")[1].equals("0"));
        } catch (IOException e) {
            return false;
        }
    }
}
