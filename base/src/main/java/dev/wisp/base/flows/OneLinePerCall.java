package dev.wisp.base.flows;

import static java.util.Objects.requireNonNull;

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
import java.util.function.Function;

/**
 * Folds the two records a call over HBONE leaves — {@code out} from the client's agent, {@code in}
 * from the server's — into one: the server's, because that agent decided (it enforces the
 * destination's policy and names it in the reason) and its source identity is the one the client's
 * certificate proved; the client's agent only guessed what the server would do. A client record is
 * kept only for a call no server agent recorded: not carried over HBONE (a destination outside the
 * mesh), or refused before it reached one (no route, unreachable, no identity to present), or the
 * server's node is not read. {@code wisp flows} prints what it keeps; the control plane's flow relay
 * serves it as the one-line-per-call view the live mesh page counts.
 *
 * <p>The two records of a call have the same client {@code ip:port} (the server's agent takes it from
 * the {@code forwarded} header its peer's certificate backs; a SOCKS5 client on the node is
 * {@code 127.0.0.1} on the client's side, its workload's address on the server's) and destination
 * {@code ip:port}, and start within {@link #SAME_CALL} of each other. Agents are read one after the
 * other, so either record may come a poll before the other: a client record of an HBONE call waits
 * up to {@code grace} for its server record, and a server record is remembered as long, for a client
 * record that comes after it. The last offer of a single read releases every waiting client record.
 *
 * <p>Generic over the caller's record type ({@code T}), which {@code fields} reads. Not thread-safe:
 * one caller offers.
 */
public final class OneLinePerCall<T> {
    /** Two records more than this apart in start time are not the same call (the client port was reused). */
    public static final Duration SAME_CALL = Duration.ofSeconds(5);

    /**
     * What pairing reads of a record.
     *
     * @param client whether the client's agent recorded it (reporter {@code source})
     * @param mtls whether the call went over HBONE (only then can a server agent have recorded it)
     * @param source the client's {@code ip:port}
     * @param destination the destination {@code ip:port}
     * @param start the start time, ISO-8601 (unparseable: never paired)
     */
    public record Fields(boolean client, boolean mtls, String source, String destination, String start) {
        public Fields {
            requireNonNull(source, "source");
            requireNonNull(destination, "destination");
        }
    }

    private final long graceNanos;
    private final Function<? super T, Fields> fields;
    private final Comparator<? super T> order;
    /** Client records of HBONE calls whose server record has not come yet, oldest first. */
    private final Deque<Waiting<T>> waiting = new ArrayDeque<>();
    /** Server records kept, remembered for a client record that comes later; oldest first. */
    private final Deque<Waiting<T>> kept = new ArrayDeque<>();

    private record Waiting<T>(T record, Fields fields, Instant start, long until) {}

    /**
     * @param grace how long a record waits for, or is remembered for, its call's other record
     * @param fields what pairing reads of a record
     * @param order the order of the records each offer returns (by start time, as a rule)
     */
    public OneLinePerCall(Duration grace, Function<? super T, Fields> fields, Comparator<? super T> order) {
        this.graceNanos = requireNonNull(grace, "grace").toNanos();
        this.fields = requireNonNull(fields, "fields");
        this.order = requireNonNull(order, "order");
    }

    /**
     * The records to keep now from the records just read (every agent's new records) at {@code
     * nowNanos}: the server records among them, client records that cannot have a server record, and
     * client records whose wait ended (all of them when {@code end}: no more records will be read); in
     * the constructor's order.
     */
    public List<T> offer(List<T> records, long nowNanos, boolean end) {
        List<T> out = new ArrayList<>();
        for (T r : records) {
            Fields f = fields.apply(r);
            Instant start = start(f);
            if (!f.client()) {
                out.add(r);
                if (!removeMatch(waiting, f, start)) {
                    kept.addLast(new Waiting<>(r, f, start, nowNanos + graceNanos));
                }
            } else if (!f.mtls()) {
                out.add(r);
            } else if (!removeMatch(kept, f, start)) {
                waiting.addLast(new Waiting<>(r, f, start, nowNanos + graceNanos));
            }
        }
        long now = end ? Long.MAX_VALUE : nowNanos;
        expire(kept, now, null);
        expire(waiting, now, out);
        out.sort(order);
        return out;
    }

    /** Removes the first entry that is {@code f}'s call seen from the other side; whether there was one. */
    private boolean removeMatch(Deque<Waiting<T>> entries, Fields f, Instant start) {
        for (Iterator<Waiting<T>> it = entries.iterator(); it.hasNext();) {
            Waiting<T> w = it.next();
            if (sameCall(w.fields(), w.start(), f, start)) {
                it.remove();
                return true;
            }
        }
        return false;
    }

    /** Drops the entries whose time is up, adding their records to {@code out} when given. */
    private void expire(Deque<Waiting<T>> entries, long nowNanos, List<T> out) {
        while (!entries.isEmpty() && (nowNanos == Long.MAX_VALUE || nowNanos - entries.peekFirst().until() >= 0)) {
            Waiting<T> w = entries.removeFirst();
            if (out != null) {
                out.add(w.record());
            }
        }
    }

    private static boolean sameCall(Fields a, Instant aStart, Fields b, Instant bStart) {
        if (a.client() == b.client() || !a.destination().equals(b.destination())) {
            return false;
        }
        if (aStart == null || bStart == null || Duration.between(aStart, bStart).abs().compareTo(SAME_CALL) > 0) {
            return false;
        }
        Fields client = a.client() ? a : b;
        Fields server = client == a ? b : a;
        if (client.source().equals(server.source())) {
            return true;
        }
        // A SOCKS5 client on the node: loopback on its agent, its workload's address (same port) beyond.
        int c = client.source().lastIndexOf(':');
        int s = server.source().lastIndexOf(':');
        return c > 0 && s > 0 && loopback(client.source().substring(0, c)) && client.source().substring(c).equals(
                server.source().substring(s));
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

    private static Instant start(Fields f) {
        if (f.start() == null) {
            return null;
        }
        try {
            return Instant.parse(f.start());
        } catch (DateTimeParseException e) {
            return null;
        }
    }
}
