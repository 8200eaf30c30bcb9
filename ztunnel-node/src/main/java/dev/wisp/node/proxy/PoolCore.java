package dev.wisp.node.proxy;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The HBONE pool's decisions, without I/O: which connection a new stream goes to, when a new
 * connection must be opened, who waits for it, and which idle connections to release.
 *
 * <p>Rules (ztunnel's): a connection carries at most {@code min(streamsPerConnection, server's
 * MAX_CONCURRENT_STREAMS)} streams; a second connection to a key is opened only when every open one
 * is full; at most one connection per key is being opened at a time (others wait for it); a
 * connection that received GOAWAY takes no new streams but keeps its open ones; a connection idle
 * (no streams) for the idle timeout is released.
 *
 * <p>Not thread-safe: the shell ({@link HbonePool}) guards every call with its monitor.
 *
 * @param <K> the pool key
 * @param <C> a connection handle
 * @param <W> a waiting stream request
 */
final class PoolCore<K, C, W> {
    /** What to do with a stream request. */
    sealed interface Decision<C> {
        /** Open the stream on this connection (a slot is already reserved). */
        record Use<C>(C connection) implements Decision<C> {}

        /** Open a new connection for this key; the request waits for it. */
        record Connect<C>() implements Decision<C> {}

        /** A connection for this key is being opened; the request waits for it. */
        record Wait<C>() implements Decision<C> {}
    }

    /**
     * The outcome of a connection becoming ready.
     *
     * @param served requests that now have a reserved slot on the new connection
     * @param connectAgain whether requests are still waiting, so another connection must be opened
     */
    record Ready<W>(List<W> served, boolean connectAgain) {}

    private static final class Conn<C> {
        final C handle;
        int active;
        int limit;
        boolean goingAway;
        long idleSince;

        Conn(C handle, int limit, long now) {
            this.handle = handle;
            this.limit = limit;
            this.idleSince = now;
        }
    }

    private static final class Key<C, W> {
        final List<Conn<C>> conns = new ArrayList<>();
        final Deque<W> waiters = new ArrayDeque<>();
        boolean connecting;
    }

    private final int streamsPerConnection;
    private final Map<K, Key<C, W>> keys = new HashMap<>();

    PoolCore(int streamsPerConnection) {
        if (streamsPerConnection < 1) {
            throw new IllegalArgumentException("streamsPerConnection must be ≥ 1");
        }
        this.streamsPerConnection = streamsPerConnection;
    }

    Decision<C> acquire(K key, W request) {
        Key<C, W> k = keys.computeIfAbsent(key, x -> new Key<>());
        for (Conn<C> c : k.conns) {
            if (!c.goingAway && c.active < c.limit) {
                c.active++;
                return new Decision.Use<>(c.handle);
            }
        }
        k.waiters.add(request);
        if (k.connecting) {
            return new Decision.Wait<>();
        }
        k.connecting = true;
        return new Decision.Connect<>();
    }

    /** The connection being opened for {@code key} is ready; the server allows {@code serverMaxStreams}. */
    Ready<W> connected(K key, C connection, long serverMaxStreams, long now) {
        Key<C, W> k = keys.computeIfAbsent(key, x -> new Key<>());
        k.connecting = false;
        Conn<C> c = new Conn<>(connection, limit(serverMaxStreams), now);
        k.conns.add(c);
        List<W> served = new ArrayList<>();
        while (c.active < c.limit && !k.waiters.isEmpty()) {
            served.add(k.waiters.poll());
            c.active++;
        }
        boolean again = !k.waiters.isEmpty();
        k.connecting = again;
        return new Ready<>(served, again);
    }

    /** Opening a connection for {@code key} failed: every waiting request fails with it. */
    List<W> connectFailed(K key) {
        Key<C, W> k = keys.get(key);
        if (k == null) {
            return List.of();
        }
        k.connecting = false;
        List<W> failed = new ArrayList<>(k.waiters);
        k.waiters.clear();
        if (k.conns.isEmpty()) {
            keys.remove(key);
        }
        return failed;
    }

    /** A stream on {@code connection} ended (or could not be opened): its slot is free again. */
    void release(K key, C connection, long now) {
        Conn<C> c = find(key, connection);
        if (c != null && c.active > 0) {
            c.active--;
            if (c.active == 0) {
                c.idleSince = now;
            }
        }
    }

    /** The server sent GOAWAY: no new streams on {@code connection}; returns whether it is now idle. */
    boolean goAway(K key, C connection) {
        Conn<C> c = find(key, connection);
        if (c == null) {
            return false;
        }
        c.goingAway = true;
        return c.active == 0;
    }

    /** The server changed MAX_CONCURRENT_STREAMS. */
    void limitChanged(K key, C connection, long serverMaxStreams) {
        Conn<C> c = find(key, connection);
        if (c != null) {
            c.limit = limit(serverMaxStreams);
        }
    }

    /** {@code connection} closed; it is forgotten. */
    void closed(K key, C connection) {
        Key<C, W> k = keys.get(key);
        if (k != null) {
            k.conns.removeIf(c -> c.handle.equals(connection));
            if (k.conns.isEmpty() && k.waiters.isEmpty() && !k.connecting) {
                keys.remove(key);
            }
        }
    }

    /** Connections idle since before {@code now - idleNanos} (or going away and idle): to close. */
    List<C> idle(long now, long idleNanos) {
        List<C> out = new ArrayList<>();
        for (Key<C, W> k : keys.values()) {
            for (Iterator<Conn<C>> it = k.conns.iterator(); it.hasNext();) {
                Conn<C> c = it.next();
                if (c.active == 0 && (c.goingAway || now - c.idleSince >= idleNanos)) {
                    out.add(c.handle);
                    it.remove();
                }
            }
        }
        keys.values().removeIf(k -> k.conns.isEmpty() && k.waiters.isEmpty() && !k.connecting);
        return out;
    }

    /** Open connections for {@code key}. */
    int connections(K key) {
        Key<C, W> k = keys.get(key);
        return k == null ? 0 : k.conns.size();
    }

    /** Open connections over all keys. */
    int connections() {
        return keys.values().stream().mapToInt(k -> k.conns.size()).sum();
    }

    /** Streams reserved or open on {@code connection}. */
    int active(K key, C connection) {
        Conn<C> c = find(key, connection);
        return c == null ? 0 : c.active;
    }

    private int limit(long serverMaxStreams) {
        return (int) Math.max(1, Math.min(streamsPerConnection, serverMaxStreams));
    }

    private Conn<C> find(K key, C connection) {
        Key<C, W> k = keys.get(key);
        if (k == null) {
            return null;
        }
        for (Conn<C> c : k.conns) {
            if (c.handle.equals(connection)) {
                return c;
            }
        }
        return null;
    }
}
