package dev.wisp.cli.flows;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.telemetry.FlowRecord;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;

/**
 * Folds the two records a call over HBONE leaves — {@code out} from the client's agent, {@code in}
 * from the server's — into one row for {@code wisp flows}: the server's, because that agent decided
 * (it enforces the destination's policy and names it in the reason) and its source identity is the
 * one the client's certificate proved; the client's agent only guessed what the server would do.
 * A client record is shown only for a call no server agent recorded: not carried over HBONE (a
 * destination outside the mesh), or refused before it reached one (no route, unreachable, no
 * identity to present), or the server's node is not read ({@code --node}).
 *
 * <p>The two records of a call have the same client {@code ip:port} (the server's agent takes it from
 * the {@code forwarded} header its peer's certificate backs; a SOCKS5 client on the node is
 * {@code 127.0.0.1} on the client's side, its workload's address on the server's) and destination
 * {@code ip:port}, and start within {@link #SAME_CALL} of each other. Agents are read one after the
 * other, so either record may come a poll before the other: a client record of an HBONE call waits
 * up to {@code grace} for its server record, and a server record is remembered as long, for a client
 * record that comes after it. The last offer of a single read releases every waiting client record.
 *
 * <p>Not thread-safe: one caller (the command's loop) offers.
 */
final class OneLinePerCall {
    /** Two records more than this apart in start time are not the same call (the client port was reused). */
    static final Duration SAME_CALL = Duration.ofSeconds(5);

    private final long graceNanos;
    /** Client records of HBONE calls whose server record has not come yet, oldest first. */
    private final Deque<Waiting> waiting = new ArrayDeque<>();
    /** Server records shown, remembered for a client record that comes later; oldest first. */
    private final Deque<Waiting> shown = new ArrayDeque<>();

    private record Waiting(FlowTable.Row row, Instant start, long until) {}

    /** @param grace how long a record waits for, or is remembered for, its call's other record */
    OneLinePerCall(Duration grace) {
        this.graceNanos = requireNonNull(grace, "grace").toNanos();
    }

    /**
     * The rows to print now from the rows just read (every agent's new records) at {@code nowNanos}:
     * the server records among them, client records that cannot have a server record, and client
     * records whose wait ended (all of them when {@code end}: no more records will be read); by start
     * time.
     */
    List<FlowTable.Row> offer(List<FlowTable.Row> rows, long nowNanos, boolean end) {
        List<FlowTable.Row> out = new ArrayList<>();
        for (FlowTable.Row r : rows) {
            FlowRecord f = r.flow();
            Instant start = start(f);
            if (!"source".equals(f.reporter())) {
                out.add(r);
                if (!removeMatch(waiting, f, start)) {
                    shown.addLast(new Waiting(r, start, nowNanos + graceNanos));
                }
            } else if (!f.mtls()) {
                out.add(r);
            } else if (!removeMatch(shown, f, start)) {
                waiting.addLast(new Waiting(r, start, nowNanos + graceNanos));
            }
        }
        long now = end ? Long.MAX_VALUE : nowNanos;
        expire(shown, now, null);
        expire(waiting, now, out);
        out.sort(Comparator.comparing((FlowTable.Row r) -> r.flow().start()).thenComparing(FlowTable.Row::node));
        return out;
    }

    /** Removes the first entry that is {@code f}'s call seen from the other side; whether there was one. */
    private static boolean removeMatch(Deque<Waiting> entries, FlowRecord f, Instant start) {
        for (Iterator<Waiting> it = entries.iterator(); it.hasNext();) {
            Waiting w = it.next();
            if (sameCall(w.row().flow(), w.start(), f, start)) {
                it.remove();
                return true;
            }
        }
        return false;
    }

    /** Drops the entries whose time is up, adding their rows to {@code out} when given. */
    private static void expire(Deque<Waiting> entries, long nowNanos, List<FlowTable.Row> out) {
        while (!entries.isEmpty() && (nowNanos == Long.MAX_VALUE || nowNanos - entries.peekFirst().until() >= 0)) {
            Waiting w = entries.removeFirst();
            if (out != null) {
                out.add(w.row());
            }
        }
    }

    static boolean sameCall(FlowRecord a, Instant aStart, FlowRecord b, Instant bStart) {
        if (a.reporter().equals(b.reporter()) || !a.destinationAddress().equals(b.destinationAddress())) {
            return false;
        }
        if (aStart == null || bStart == null || Duration.between(aStart, bStart).abs().compareTo(SAME_CALL) > 0) {
            return false;
        }
        FlowRecord client = "source".equals(a.reporter()) ? a : b;
        FlowRecord server = client == a ? b : a;
        if (client.sourceAddress().equals(server.sourceAddress())) {
            return true;
        }
        // A SOCKS5 client on the node: loopback on its agent, its workload's address (same port) beyond.
        int c = client.sourceAddress().lastIndexOf(':');
        int s = server.sourceAddress().lastIndexOf(':');
        return c > 0 && s > 0 && loopback(client.sourceAddress().substring(0, c)) && client.sourceAddress()
                .substring(c).equals(server.sourceAddress().substring(s));
    }

    private static boolean loopback(String ip) {
        if (!ip.matches("[0-9.]+|\\[?[0-9a-fA-F:]+]?")) {
            return false; // never resolve a name read from an agent
        }
        try {
            return InetAddress.getByName(ip).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    private static Instant start(FlowRecord f) {
        try {
            return Instant.parse(f.start());
        } catch (DateTimeParseException e) {
            return null;
        }
    }
}
