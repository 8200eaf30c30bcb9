package dev.wisp.controlplane.flows;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The relay's merged flows: the last {@code capacity} records of every agent, numbered by the relay
 * from 1 in the order they were merged (each record's {@code seq}), so that a reader follows them
 * with {@code ?since=N} whatever node they came from.
 *
 * <p>Thread-safe: guarded by its own monitor; readers may wait for records after a number.
 */
final class FlowBuffer {
    /** A merged record: its relay number and its JSON line's object. */
    record Entry(long seq, ObjectNode flow) {}

    private final int capacity;
    // Guarded by `this`.
    private final ArrayDeque<Entry> entries = new ArrayDeque<>();
    private long last;

    FlowBuffer(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be at least 1, not " + capacity);
        }
        this.capacity = capacity;
    }

    /** Numbers {@code flows} in order (setting their {@code seq}), keeps them, wakes waiting readers. */
    synchronized void append(List<ObjectNode> flows) {
        for (ObjectNode f : flows) {
            last++;
            f.put("seq", last);
            entries.addLast(new Entry(last, f));
            if (entries.size() > capacity) {
                entries.removeFirst();
            }
        }
        if (!flows.isEmpty()) {
            notifyAll();
        }
    }

    /** The records after number {@code since}, oldest first (those still kept). */
    synchronized List<Entry> since(long since) {
        List<Entry> out = new ArrayList<>();
        for (Entry e : entries) {
            if (e.seq() > since) {
                out.add(e);
            }
        }
        return out;
    }

    /** {@link #since}, waiting up to {@code timeoutMillis} for at least one record. */
    synchronized List<Entry> await(long since, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (last <= since) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0) {
                return List.of();
            }
            wait(left);
        }
        return since(since);
    }

    synchronized long last() {
        return last;
    }
}
