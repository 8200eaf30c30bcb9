package dev.wisp.node.dns;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.state.Snapshot;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the DNS proxy answers itself: each mesh service's hostname ({@code <svc>.<ns>.svc.<domain>},
 * as the control plane names it) → its VIPs, or, for a headless service (no VIP), the addresses of
 * the workloads that back it. Every other name, and every query type but A and AAAA, is the
 * upstream resolver's ({@link Reply.Forward}). The name table is built once per state
 * {@link Snapshot} and swapped atomically, so a query is a hash lookup; safe from any thread.
 */
final class MeshNames {
    /** Seconds a client may cache a mesh answer: short, since the state changes under it. */
    static final int TTL = 5;

    /** What to do with one query. */
    sealed interface Reply {
        /** Send these bytes back to the client. */
        record Answer(byte[] message) implements Reply {}

        /** Not a mesh name (or a type only the upstream answers): ask the upstream resolver. */
        record Forward() implements Reply {}

        /** Not a query (a response, or shorter than a header): send nothing. */
        record Drop() implements Reply {}
    }

    private record Table(Snapshot snapshot, Map<String, List<InetAddress>> names) {}

    private final WorkloadIndex index;
    private volatile Table table;

    MeshNames(WorkloadIndex index) {
        this.index = requireNonNull(index, "index");
    }

    /** The reply to {@code query[0..length)}, an answer at most {@code limit} bytes long. */
    Reply reply(byte[] query, int length, int limit) {
        DnsMessage.Question q;
        try {
            q = DnsMessage.parse(query, length);
        } catch (DnsFormatException e) {
            int id = DnsMessage.id(query, length);
            boolean response = length >= DnsMessage.HEADER && (query[2] & 0x80) != 0;
            return id < 0 || response
                    ? new Reply.Drop()
                    : new Reply.Answer(DnsMessage.error(id, DnsMessage.RCODE_FORMERR));
        }
        if (q.isResponse()) {
            return new Reply.Drop();
        }
        if (q.opcode() != 0 || q.qclass() != DnsMessage.CLASS_IN) {
            return new Reply.Forward();
        }
        List<InetAddress> all = addresses(q.name());
        if (all == null || (q.type() != DnsMessage.TYPE_A && q.type() != DnsMessage.TYPE_AAAA)) {
            return new Reply.Forward();
        }
        int size = q.type() == DnsMessage.TYPE_A ? 4 : 16;
        // A mesh name with no address of the asked family: no records, but the name exists (NOERROR),
        // so the client does not fall through to the upstream for it.
        List<InetAddress> family = all.stream().filter(a -> a.getAddress().length == size).toList();
        return new Reply.Answer(DnsMessage.answer(q, family, TTL, limit));
    }

    /** The addresses of mesh name {@code name} (lower case, no final dot); null when not a mesh name. */
    List<InetAddress> addresses(String name) {
        Snapshot s = index.snapshot();
        Table t = table;
        if (t == null || t.snapshot() != s) {
            t = new Table(s, build(s));
            table = t;
        }
        return t.names().get(name);
    }

    private static Map<String, List<InetAddress>> build(Snapshot s) {
        Map<String, List<InetAddress>> names = new HashMap<>();
        for (Resource r : s.resources().getOrDefault(StateUpdates.SERVICE, Map.of()).values()) {
            Service svc = r.getService();
            List<InetAddress> out = new ArrayList<>();
            if (svc.getAddressesCount() > 0) {
                svc.getAddressesList().forEach(a -> add(out, a));
            } else {
                for (Workload w : s.endpoints(svc.getNamespace() + "/" + svc.getHostname())) {
                    w.getAddressesList().forEach(a -> add(out, a));
                }
            }
            names.put(svc.getHostname().toLowerCase(Locale.ROOT), List.copyOf(out));
        }
        return names;
    }

    private static void add(List<InetAddress> out, ByteString a) {
        try {
            out.add(InetAddress.getByAddress(a.toByteArray()));
        } catch (UnknownHostException e) {
            // The state validator admits only 4- and 16-byte addresses; anything else is not answered.
        }
    }
}
