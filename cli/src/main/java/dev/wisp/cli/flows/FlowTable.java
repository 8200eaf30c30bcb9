package dev.wisp.cli.flows;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.wisp.base.flows.OneLinePerCall;
import dev.wisp.node.telemetry.FlowLog;
import dev.wisp.node.telemetry.FlowRecord;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Locale;
import java.util.StringJoiner;

/**
 * How {@code wisp flows} prints connections: a table that fits 120 columns, or one JSON object per
 * line. Pure: no I/O; the time zone is a parameter.
 *
 * <p>A row is one agent's record: {@code out} on the client's node (reporter {@code source}),
 * {@code in} on the server's (reporter {@code destination}); {@link #oneLinePerCall} picks one per
 * call for {@code wisp flows}. Identities
 * are shown without {@code spiffe://<trust domain>/} to fit; the JSON form has them whole.
 */
public final class FlowTable {
    /** The table's columns in order, each with its header and width. */
    private enum Column {
        TIME("TIME", 8), NODE("NODE", 9), SOURCE("SOURCE (IDENTITY)", 33), DESTINATION("DESTINATION",
                30), VERDICT("VERDICT", 7), BYTES("BYTES ↑/↓", 13), DURATION("DURATION", 8);

        final String header;
        final int width;

        Column(String header, int width) {
            this.header = header;
            this.width = width;
        }
    }

    private static final String GAP = "  ";
    /** The table's width in columns (120): the columns' widths and a gap between each two. */
    public static final int WIDTH = Arrays.stream(Column.values()).mapToInt(c -> c.width).sum() + GAP.length()
            * (Column.values().length - 1);

    private final DateTimeFormatter time;

    public FlowTable(ZoneId zone) {
        this.time = DateTimeFormatter.ofPattern("HH:mm:ss", Locale.ROOT).withZone(requireNonNull(zone, "zone"));
    }

    /** One connection as {@link ClusterFlows} read it: the node whose agent reported it, and the record. */
    public record Row(String node, FlowRecord flow) {
        public Row {
            requireNonNull(node, "node");
            requireNonNull(flow, "flow");
        }

        /** What {@link OneLinePerCall} pairs the two records of a call by. */
        OneLinePerCall.Fields callFields() {
            return new OneLinePerCall.Fields("source".equals(flow.reporter()), flow.mtls(), flow
                    .sourceAddress(), flow.destinationAddress(), flow.start());
        }
    }

    /** One row per call (the server's record; the client's only when no server recorded it), by start time. */
    static OneLinePerCall<Row> oneLinePerCall(Duration grace) {
        return new OneLinePerCall<>(grace, Row::callFields, Comparator.comparing((Row r) -> r.flow().start())
                .thenComparing(Row::node));
    }

    public String header() {
        return line(Arrays.stream(Column.values()).map(c -> c.header).toArray(String[]::new));
    }

    public String row(Row r) {
        FlowRecord f = r.flow();
        String dir = "source".equals(f.reporter()) ? "out" : "in";
        return line(clock(f.start()), r.node() + " " + dir, source(f), destination(f), f.verdict(),
                bytes(f.bytesSent()) + "/" + bytes(f.bytesReceived()), duration(f.durationMillis()));
    }

    /**
     * One connection in at most 77 columns, for narrow terminals and the demo (no duration; identities
     * as {@code namespace/service-account}):
     * {@code 09:15:03 node2 in  client (default/client)  → server:8080   allowed 1.2k/3.4k}.
     */
    public String compact(Row r) {
        FlowRecord f = r.flow();
        String dir = "source".equals(f.reporter()) ? "out" : "in";
        String who = f.sourceWorkload().isEmpty() ? host(f.sourceAddress()) : f.sourceWorkload();
        String id = shortId(f.sourceIdentity()).replaceFirst("^ns/([^/]+)/sa/", "$1/");
        return (clock(f.start()) + " " + fit(r.node() + " " + dir, 9) + " " + fit(id.isEmpty()
                ? who
                : who + " ("
                        + id + ")",
                24) + " → " + fit(destination(f), 13) + " " + fit(f.verdict(), 7) + " "
                + bytes(f.bytesSent()) + "/" + bytes(f.bytesReceived())).stripTrailing();
    }

    /** One JSON object: the record's fields (as {@code /flows} names them) and {@code node}. */
    public static String json(Row r) {
        ObjectNode o = FlowLog.JSON.createObjectNode();
        o.put("node", r.node());
        o.setAll((ObjectNode) FlowLog.JSON.valueToTree(r.flow()));
        try {
            return FlowLog.JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot render a flow as JSON", e);
        }
    }

    /** {@code workload (ns/NS/sa/SA)}, or the address for a client outside the mesh. */
    static String source(FlowRecord f) {
        String who = f.sourceWorkload().isEmpty() ? host(f.sourceAddress()) : f.sourceWorkload();
        return f.sourceIdentity().isEmpty() ? who : who + " (" + shortId(f.sourceIdentity()) + ")";
    }

    /** {@code workload/service:port}: the workload, and the service when the client asked for one. */
    static String destination(FlowRecord f) {
        String port = port(f.destinationAddress());
        String who = f.destinationWorkload().isEmpty() ? host(f.destinationAddress()) : f.destinationWorkload();
        if (!f.destinationService().isEmpty()) {
            who += "/" + f.destinationService().split("\\.")[0];
        }
        return port.isEmpty() ? who : who + ":" + port;
    }

    /** {@code spiffe://cluster.local/ns/a/sa/b} → {@code ns/a/sa/b}; anything else unchanged. */
    static String shortId(String id) {
        if (id.startsWith("spiffe://")) {
            int slash = id.indexOf('/', "spiffe://".length());
            if (slash > 0) {
                return id.substring(slash + 1);
            }
        }
        return id;
    }

    String clock(String iso) {
        try {
            return time.format(Instant.parse(iso));
        } catch (DateTimeParseException e) {
            return "?";
        }
    }

    /** {@code 512}, {@code 1.5k}, {@code 12M}, {@code 3.0G}: at most 4 characters up to 999 G. */
    static String bytes(long n) {
        if (n < 1000) {
            return Long.toString(n);
        }
        String[] units = {"k", "M", "G", "T"};
        double v = n;
        int u = -1;
        while (v >= 999.5 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return (v < 9.95 ? String.format(Locale.ROOT, "%.1f", v) : Long.toString(Math.round(v))) + units[u];
    }

    /** {@code 12ms}, {@code 1.5s}, {@code 42s}, {@code 3m05s}, {@code 2h07m}. */
    static String duration(long ms) {
        if (ms < 1000) {
            return ms + "ms";
        }
        if (ms < 10_000) {
            return String.format(Locale.ROOT, "%.1fs", ms / 1000.0);
        }
        long s = ms / 1000;
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
        }
        return String.format(Locale.ROOT, "%dh%02dm", s / 3600, s / 60 % 60);
    }

    private static String host(String address) {
        int colon = address.lastIndexOf(':');
        return colon < 0 ? address : address.substring(0, colon);
    }

    private static String port(String address) {
        int colon = address.lastIndexOf(':');
        return colon < 0 ? "" : address.substring(colon + 1);
    }

    /** One cell per {@link Column}, in order, each fitted to its column's width. */
    private static String line(String... cells) {
        Column[] columns = Column.values();
        StringJoiner out = new StringJoiner(GAP);
        for (int i = 0; i < columns.length; i++) {
            out.add(fit(cells[i], columns[i].width));
        }
        return out.toString();
    }

    /** {@code s} padded or cut to {@code width} (a cut ends in '…'); control characters become '?'. */
    public static String fit(String s, int width) {
        StringBuilder b = new StringBuilder(width);
        s.codePoints().map(c -> Character.isISOControl(c) ? '?' : c).forEach(b::appendCodePoint);
        if (b.codePointCount(0, b.length()) > width) {
            return b.substring(0, b.offsetByCodePoints(0, width - 1)) + "…";
        }
        return b + " ".repeat(width - b.codePointCount(0, b.length()));
    }
}
