package dev.wisp.node.telemetry;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * The last {@code capacity} connections the agent completed or refused, oldest dropped first: what
 * the admin API's {@code /flows} serves under {@code connections}. Records are numbered from 1 so a
 * reader can ask for what came after the last one it saw ({@code ?since=N}). Written by the event
 * loops as connections close, read by admin requests; guarded by its own monitor (one short
 * critical section per connection, off the per-byte path).
 */
public final class FlowLog {
    /** JSON names are the record's in snake_case ({@code source_identity}, {@code bytes_sent}). */
    public static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .configure(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    private final int capacity;
    // Guarded by `this`.
    private final ArrayDeque<FlowRecord> records;
    // Guarded by `this`: the seq of the newest record, 0 before the first.
    private long last;

    public FlowLog(int capacity) {
        if (capacity < 1) {
            throw new IllegalArgumentException("flow log capacity must be positive: " + capacity);
        }
        this.capacity = capacity;
        this.records = new ArrayDeque<>(Math.min(capacity, 1024));
    }

    /** Appends {@code r} (its {@code seq} is replaced by the next number) and returns the stored record. */
    public synchronized FlowRecord add(FlowRecord r) {
        requireNonNull(r, "record");
        if (records.size() == capacity) {
            records.removeFirst();
        }
        FlowRecord stored = r.withSeq(++last);
        records.addLast(stored);
        return stored;
    }

    /** The records with {@code seq > since}, oldest first. */
    public synchronized List<FlowRecord> since(long since) {
        List<FlowRecord> out = new ArrayList<>();
        for (FlowRecord r : records.reversed()) {
            if (r.seq() <= since) {
                break;
            }
            out.add(r);
        }
        return out.reversed();
    }

    /** The seq of the newest record (0 when none yet). */
    public synchronized long last() {
        return last;
    }

    /** {@link #since} as a JSON array. */
    public ArrayNode json(long since) {
        ArrayNode a = JSON.createArrayNode();
        for (FlowRecord r : since(since)) {
            a.add(JSON.valueToTree(r));
        }
        return a;
    }

    /** Parses one record as {@link #json} writes it. */
    public static FlowRecord parse(com.fasterxml.jackson.databind.JsonNode node) throws JsonProcessingException {
        return JSON.treeToValue(requireNonNull(node, "node"), FlowRecord.class);
    }
}
