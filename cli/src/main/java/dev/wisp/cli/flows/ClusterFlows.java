package dev.wisp.cli.flows;

import dev.wisp.node.NodeSettings;
import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import dev.wisp.local.InNetns;
import dev.wisp.node.telemetry.FlowLog;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Reads the node agents' {@code /flows} of a local cluster. Each agent's admin API listens on
 * 127.0.0.1:15000 inside its node's network namespace ({@code wisp-<cluster>-node<i>}) and nowhere
 * else, so the request is made from a platform thread that has entered that namespace
 * ({@link InNetns}). Remembers, per node, the last record it returned, so that
 * {@link #poll()} returns only what is new (for {@code --follow}).
 *
 * <p>Not thread-safe: one caller polls.
 */
public final class ClusterFlows {
    /** Where {@code ip netns} keeps named namespaces. */
    static final Path NETNS_DIR = Path.of("/var/run/netns");
    /** The agent's admin API, on loopback in its node's network namespace. */
    private static final int ADMIN_PORT = NodeSettings.Ports.ZTUNNEL.admin();

    private final String cluster;
    private final List<String> nodes;
    private final Map<String, Long> last = new HashMap<>();

    /** What one poll found: new rows oldest first, and the nodes whose agent did not answer (node → why). */
    public record Poll(List<FlowTable.Row> rows, Map<String, String> failures) {}

    private ClusterFlows(String cluster, List<String> nodes) {
        this.cluster = cluster;
        this.nodes = nodes;
    }

    /**
     * The cluster's nodes, or one of them.
     *
     * @param node a node number (1-based) or name ({@code node2}); {@code null} for all
     * @throws IllegalArgumentException naming what exists, when the cluster or node does not
     */
    public static ClusterFlows of(String cluster, String node) throws IOException {
        requireNonNull(cluster, "cluster");
        List<String> all = nodeNames(NETNS_DIR, cluster);
        if (all.isEmpty()) {
            throw new IllegalArgumentException("no cluster '" + cluster + "' on this machine (no network namespace "
                    + "wisp-" + cluster + "-node1); start one with 'wisp demo'");
        }
        if (node == null) {
            return new ClusterFlows(cluster, all);
        }
        String name = node.matches("[0-9]+") ? "node" + node : node;
        if (!all.contains(name)) {
            throw new IllegalArgumentException("cluster '" + cluster + "' has no node '" + node + "' (nodes: "
                    + String.join(", ", all) + ")");
        }
        return new ClusterFlows(cluster, List.of(name));
    }

    /** {@code node1, node2, …} of {@code cluster}, in number order, from the namespaces in {@code dir}. */
    static List<String> nodeNames(Path dir, String cluster) throws IOException {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        Pattern p = Pattern.compile(Pattern.quote("wisp-" + cluster + "-") + "(node([0-9]+))");
        List<Matcher> found = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.map(f -> p.matcher(f.getFileName().toString())).filter(Matcher::matches).forEach(found::add);
        }
        found.sort(Comparator.comparingInt(m -> Integer.parseInt(m.group(2))));
        return found.stream().map(m -> m.group(1)).toList();
    }

    public List<String> nodes() {
        return nodes;
    }

    /** Whether the cluster's node namespaces still exist (a cluster torn down while followed has none). */
    public boolean exists() throws IOException {
        return !nodeNames(NETNS_DIR, cluster).isEmpty();
    }

    /** The connections every node reported since the previous poll (all of them at the first), by time. */
    public Poll poll() {
        List<FlowTable.Row> rows = new ArrayList<>();
        Map<String, String> failures = new java.util.LinkedHashMap<>();
        for (String node : nodes) {
            long since = last.getOrDefault(node, 0L);
            try {
                JsonNode body = FlowLog.JSON.readTree(get(node, "/flows?since=" + since));
                for (JsonNode n : body.path("connections")) {
                    rows.add(new FlowTable.Row(node, FlowLog.parse(n)));
                }
                long newest = body.path("last_seq").asLong(since);
                // An agent that restarted numbers from 1 again: start over with it.
                last.put(node, newest < since ? 0 : newest);
            } catch (IOException e) {
                Throwable why = e.getCause() != null && e.getCause().getMessage() != null ? e.getCause() : e;
                failures.put(node, "the node agent on " + node + " does not answer on 127.0.0.1:" + ADMIN_PORT
                        + " in network namespace " + netns(node) + " (" + why.getMessage()
                        + "); is it running?");
            }
        }
        rows.sort(Comparator.comparing((FlowTable.Row r) -> r.flow().start()).thenComparing(FlowTable.Row::node));
        return new Poll(rows, failures);
    }

    private String netns(String node) {
        return "wisp-" + cluster + "-" + node;
    }

    /** {@code GET path} from the node's agent admin API; the body when the answer is 200. */
    private String get(String node, String path) throws IOException {
        return InNetns.httpGet(netns(node), ADMIN_PORT, path);
    }
}
