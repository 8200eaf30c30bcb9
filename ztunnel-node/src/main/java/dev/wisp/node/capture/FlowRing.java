package dev.wisp.node.capture;

import dev.wisp.base.IpText;
import dev.wisp.bpf.capture.FlowEvent;
import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.List;

/**
 * The last {@code capacity} flow events capture reported, oldest dropped first: what the admin
 * API's {@code /flows} shows (the basis of {@code wisp flows}). Written by the ring buffer reader
 * thread, read by admin requests; guarded by its own monitor.
 */
final class FlowRing {
    /** One event with the time the agent read it. */
    record Entry(Instant at, FlowEvent event) {}

    private final int capacity;
    // Guarded by `this`.
    private final ArrayDeque<Entry> entries;

    FlowRing(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("flow ring capacity must be positive: " + capacity);
        }
        this.capacity = capacity;
        this.entries = new ArrayDeque<>(Math.min(capacity, 1024));
    }

    synchronized void add(Instant at, FlowEvent e) {
        if (entries.size() == capacity) {
            entries.removeFirst();
        }
        entries.addLast(new Entry(at, e));
    }

    synchronized List<Entry> snapshot() {
        return List.copyOf(entries);
    }

    /** The events as a JSON array, oldest first. Every value is a number, boolean or an address we formatted. */
    String jsonArray() {
        StringBuilder out = new StringBuilder("[");
        boolean first = true;
        for (Entry en : snapshot()) {
            FlowEvent e = en.event();
            out.append(first ? "\n  " : ",\n  ");
            first = false;
            out.append("{\"at\": \"").append(en.at()).append("\", \"type\": \"").append(e.type())
                    .append("\", \"cookie\": ").append(e.cookie()).append(", \"cgroup_id\": ").append(e.cgroupId())
                    .append(", \"redirected\": ").append(e.redirected()).append(", \"source\": ")
                    .append(addr(e.source())).append(", \"destination\": ").append(addr(e.destination()))
                    .append(", \"original_destination\": ").append(addr(e.originalDestination()))
                    .append(", \"bytes_sent\": ").append(e.bytesSent()).append(", \"bytes_received\": ")
                    .append(e.bytesReceived()).append('}');
        }
        return out.append(first ? "]" : "\n]").toString();
    }

    private static String addr(InetSocketAddress a) {
        if (a == null) {
            return "null";
        }
        return "\"" + IpText.hostPort(a) + "\"";
    }
}
