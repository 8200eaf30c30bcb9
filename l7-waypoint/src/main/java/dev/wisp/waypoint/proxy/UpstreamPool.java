package dev.wisp.waypoint.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.proxy.HbonePool;
import dev.wisp.node.proxy.HboneTunnel;
import dev.wisp.node.proxy.PoolKey;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.ChannelHandler;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * The waypoint's upstream connections, kept across requests as haproxy and nginx keep theirs: per
 * endpoint ({@link Key}: its address, the protocol, and the HBONE pool key that names the identity
 * expected of its node), HBONE streams that stay open after an answer.
 *
 * <ul>
 *   <li>HTTP/1.1: a stream carries one request at a time ({@link H1Upstream}); after a complete answer
 *       that keeps the connection (no {@code connection: close}, HTTP/1.1, nothing after it) it goes
 *       back to the endpoint's idle list (at most {@link #MAX_IDLE}, newest taken first, each closed
 *       after {@code idleTimeout} unused). A request sent on a reused stream that the endpoint closed
 *       before any byte of an answer is sent once more on a new stream when its method is idempotent
 *       (RFC 9110 section 9.2.2: the race of an idle close is not the request's fault).</li>
 *   <li>HTTP/2 and gRPC: one h2c connection inside one HBONE stream per endpoint ({@link H2Upstream}),
 *       many requests multiplexed on it, as many as the endpoint's SETTINGS_MAX_CONCURRENT_STREAMS;
 *       when all are in use, another connection. A connection closes after {@code idleTimeout}
 *       without a stream, and takes no more after a GOAWAY or the end of its HBONE stream.</li>
 * </ul>
 *
 * <p>An upstream with an error (an answer that does not parse, one without a request, a request
 * cancelled by a timeout while in flight, the stream reset or ended by the endpoint) is retired, never
 * handed to another request. Counted in {@code wisp_waypoint_upstream_connections{protocol,state}}
 * (open now, idle or busy), {@code wisp_waypoint_upstream_opened_total{protocol}},
 * {@code wisp_waypoint_upstream_retired_total{protocol,reason}} and
 * {@code wisp_waypoint_upstream_requests_total{protocol,connection="new"|"reused"}}.
 *
 * <p>Thread-safety: each endpoint's lists are guarded by their {@link Slot}'s monitor; an upstream's
 * own state is confined to its stream's event loop; the counts are atomic.
 */
final class UpstreamPool {
    /** HTTP/1.1 streams kept idle per endpoint at most; more are closed as they become idle. */
    static final int MAX_IDLE = 32;
    /** The streams an h2c connection is assumed to take until its peer's SETTINGS say (RFC 9113's advice). */
    static final int DEFAULT_STREAMS = 100;
    private static final Set<HttpMethod> IDEMPOTENT = Set.of(HttpMethod.GET, HttpMethod.HEAD, HttpMethod.OPTIONS,
            HttpMethod.PUT, HttpMethod.DELETE, HttpMethod.TRACE);

    /** What makes two requests share an upstream. */
    record Key(InetSocketAddress address, boolean h2, PoolKey node) {}

    /** One endpoint's upstreams. */
    static final class Slot {
        /** Guarded by this: HTTP/1.1 streams waiting for a request, oldest first. */
        final ArrayDeque<H1Upstream> idle = new ArrayDeque<>();
        /** Guarded by this: h2c connections that take new streams. */
        final List<H2Upstream> h2 = new ArrayList<>();
    }

    private final HbonePool pool;
    private final long idleNanos;
    private final Map<Key, Slot> slots = new ConcurrentHashMap<>();
    private final MeterRegistry registry;
    private final Meters http1;
    private final Meters http2;

    UpstreamPool(HbonePool pool, Duration idleTimeout, MeterRegistry registry) {
        this.pool = requireNonNull(pool, "pool");
        this.idleNanos = idleTimeout.toNanos();
        this.registry = requireNonNull(registry, "registry");
        this.http1 = new Meters(registry, "http1");
        this.http2 = new Meters(registry, "http2");
    }

    /**
     * One protocol's upstream meters: the streams open and idle that the connection gauges read (an h2c
     * connection is idle without streams), the connections opened, and the requests sent on a new or a
     * reused connection.
     */
    private static final class Meters {
        final AtomicInteger open = new AtomicInteger();
        final AtomicInteger idle = new AtomicInteger();
        final Counter opened;
        final Counter onNew;
        final Counter reused;

        Meters(MeterRegistry registry, String protocol) {
            gauge(registry, protocol, "idle", idle::get);
            gauge(registry, protocol, "busy", () -> open.get() - idle.get());
            this.opened = Counter.builder("wisp_waypoint_upstream_opened")
                    .description("upstream connections (HBONE streams) the waypoint opened to endpoints")
                    .tag("protocol", protocol).register(registry);
            this.onNew = requests(registry, protocol, "new");
            this.reused = requests(registry, protocol, "reused");
        }

        /** A connection is opened for a request. */
        void openedFor() {
            onNew.increment();
            open.incrementAndGet();
            opened.increment();
        }

        private static void gauge(MeterRegistry registry, String protocol, String state, Supplier<Number> value) {
            Gauge.builder("wisp_waypoint_upstream_connections", () -> value.get().doubleValue())
                    .description("the waypoint's upstream connections to endpoints (HBONE streams), by state")
                    .tag("protocol", protocol).tag("state", state).register(registry);
        }

        private static Counter requests(MeterRegistry registry, String protocol, String connection) {
            return Counter.builder("wisp_waypoint_upstream_requests")
                    .description("requests sent upstream, on a new or a reused upstream connection")
                    .tag("protocol", protocol).tag("connection", connection).register(registry);
        }
    }

    /** Counts an upstream retired for {@code reason} (a short word: closed, error, idle, cancelled, …). */
    void retired(boolean h2, String reason) {
        Counter.builder("wisp_waypoint_upstream_retired")
                .description("upstream connections the waypoint closed or lost, by why")
                .tag("protocol", h2 ? "http2" : "http1").tag("reason", reason).register(registry).increment();
        (h2 ? http2 : http1).open.decrementAndGet();
    }

    private Slot slot(Key key) {
        return slots.computeIfAbsent(key, k -> new Slot());
    }

    /**
     * Sends {@code request} (released here) to {@code to} on a pooled upstream; the future gives the
     * answer (the caller releases it) or fails with a {@link Forwarder.Failure}. Cancelling the future
     * retires the upstream that carries the request.
     */
    Future<FullHttpResponse> send(FullHttpRequest request, Forwarder.Endpoint to, boolean h2,
            EventExecutor executor) {
        Promise<FullHttpResponse> response = executor.newPromise();
        // The waypoint keeps its upstreams: a hop-by-hop close is not the client's to pass on.
        request.headers().remove(HttpHeaderNames.CONNECTION);
        if (h2) {
            stream(to, executor, new HttpObjectAggregator(Forwarder.MAX_BODY), new Forwarder.Answer(response))
                    .addListener((Future<Http2StreamChannel> s) -> {
                        if (!s.isSuccess()) {
                            request.release();
                            response.tryFailure(s.cause());
                            return;
                        }
                        Http2StreamChannel stream = s.getNow();
                        response.addListener(x -> {
                            if (!x.isSuccess() && stream.isActive()) {
                                stream.close(); // cancelled or failed: this stream only is reset
                            }
                        });
                        stream.writeAndFlush(request);
                    });
        } else {
            sendH1(request, to, response, executor, true);
        }
        return response;
    }

    private void sendH1(FullHttpRequest request, Forwarder.Endpoint to, Promise<FullHttpResponse> response,
            EventExecutor executor, boolean mayReuse) {
        if (response.isDone()) {
            request.release();
            return;
        }
        Key key = new Key(to.address(), false, to.key());
        Slot slot = slot(key);
        H1Upstream idle = mayReuse ? takeIdle(slot) : null;
        if (idle != null) {
            http1.reused.increment();
            Runnable stale = null;
            if (IDEMPOTENT.contains(request.method())) {
                FullHttpRequest spare = request.retainedDuplicate();
                AtomicBoolean used = new AtomicBoolean();
                response.addListener(x -> {
                    if (used.compareAndSet(false, true)) {
                        spare.release();
                    }
                });
                stale = () -> executor.execute(() -> {
                    if (used.compareAndSet(false, true)) {
                        sendH1(spare, to, response, executor, false);
                    }
                });
            }
            idle.exchange(request, response, stale);
            return;
        }
        http1.openedFor();
        H1Upstream fresh = new H1Upstream(this, slot);
        HboneTunnel.open(pool, to.key(), to.address(), fresh::handlers, executor)
                .addListener((Future<Http2StreamChannel> f) -> {
                    if (!f.isSuccess()) {
                        retired(false, "refused");
                        request.release();
                        response.tryFailure(new Forwarder.Failure(503, "tunnel to " + to.address() + " via "
                                + to.key().destination() + ": " + f.cause().getMessage(), true));
                        return;
                    }
                    fresh.opened(f.getNow());
                    fresh.exchange(request, response, null);
                });
    }

    /** The newest idle stream of {@code slot} still open, or null. */
    private H1Upstream takeIdle(Slot slot) {
        synchronized (slot) {
            H1Upstream u;
            while ((u = slot.idle.pollLast()) != null) {
                http1.idle.decrementAndGet();
                if (u.usable()) {
                    return u;
                }
            }
            return null;
        }
    }

    /**
     * {@code u} answered and may take another request: back to its endpoint's idle list, or false when
     * the list is full (the caller retires it).
     */
    boolean idle(H1Upstream u, Slot slot) {
        synchronized (slot) {
            if (slot.idle.size() >= MAX_IDLE) {
                return false;
            }
            slot.idle.addLast(u);
            http1.idle.incrementAndGet();
        }
        long since = u.idleSince(System.nanoTime());
        u.eventLoop().schedule(() -> {
            if (removeIdle(u, slot, since)) {
                u.retire("idle");
            }
        }, idleNanos, TimeUnit.NANOSECONDS);
        return true;
    }

    /**
     * Takes {@code u} off its idle list if it is there (and, with {@code since} not 0, has been idle
     * since then); whether it was.
     */
    boolean removeIdle(H1Upstream u, Slot slot, long since) {
        synchronized (slot) {
            if ((since != 0 && u.idleSince() != since) || !slot.idle.removeFirstOccurrence(u)) {
                return false;
            }
            http1.idle.decrementAndGet();
            return true;
        }
    }

    /**
     * A new stream on an h2c connection to {@code to} with {@code handlers} after Netty's stream-frame
     * codec ({@link H2cUpstream#stream}); a connection of the endpoint's with room is shared, else
     * another is opened. The future (listeners on {@code executor}) fails with an unsent
     * {@link Forwarder.Failure} when no stream could be opened.
     */
    Future<Http2StreamChannel> stream(Forwarder.Endpoint to, EventExecutor executor, ChannelHandler... handlers) {
        Promise<Http2StreamChannel> out = executor.newPromise();
        stream(slot(new Key(to.address(), true, to.key())), to, executor, handlers, out);
        return out;
    }

    private void stream(Slot slot, Forwarder.Endpoint to, EventExecutor executor, ChannelHandler[] handlers,
            Promise<Http2StreamChannel> out) {
        H2Upstream conn;
        H2Upstream setUp = null;
        synchronized (slot) {
            conn = acquire(slot);
            if (conn == null) {
                for (H2Upstream c : slot.h2) {
                    if (c.pending()) {
                        setUp = c;
                    }
                }
                if (setUp == null) {
                    conn = new H2Upstream(this, slot);
                    conn.open(HboneTunnel.open(pool, to.key(), to.address(), conn::handlers, executor), executor);
                    conn.take();
                    slot.h2.add(conn);
                    http2.openedFor();
                }
            }
        }
        if (conn == null) {
            // A connection being set up: its limit comes with its SETTINGS; then ask again.
            setUp.ready().addListener(x -> stream(slot, to, executor, handlers, out));
            return;
        }
        H2Upstream taken = conn;
        conn.ready().addListener((Future<Http2StreamChannel> t) -> {
            if (!t.isSuccess()) {
                taken.release();
                out.tryFailure(new Forwarder.Failure(503, "tunnel to " + to.address() + " via "
                        + to.key().destination() + ": " + t.cause().getMessage(), true));
                return;
            }
            H2cUpstream.stream(t.getNow(), t.getNow().eventLoop().newPromise(), handlers)
                    .addListener((Future<Http2StreamChannel> s) -> {
                        if (!s.isSuccess()) {
                            taken.full();
                            taken.release();
                            out.tryFailure(new Forwarder.Failure(503, "HTTP/2 stream to the endpoint could not be "
                                    + "opened: " + s.cause().getMessage(), true));
                            return;
                        }
                        s.getNow().closeFuture().addListener(x -> taken.release());
                        if (!out.trySuccess(s.getNow())) {
                            s.getNow().close();
                        }
                    });
        });
    }

    /** A connection of {@code slot} with room for one more stream (counted as taken), or null. */
    private H2Upstream acquire(Slot slot) {
        assert Thread.holdsLock(slot);
        for (H2Upstream c : slot.h2) {
            if (c.take()) {
                http2.reused.increment();
                return c;
            }
        }
        return null;
    }

    /** {@code c} takes no new streams: off its endpoint's list. */
    void drop(H2Upstream c, Slot slot) {
        synchronized (slot) {
            slot.h2.remove(c);
        }
    }

    /** An h2c connection's streams went from one to none ({@code idle}) or from none to one. */
    void h2Idle(boolean idle) {
        if (idle) {
            http2.idle.incrementAndGet();
        } else {
            http2.idle.decrementAndGet();
        }
    }

    long idleNanos() {
        return idleNanos;
    }
}
