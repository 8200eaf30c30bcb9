package dev.wisp.waypoint.proxy;

import dev.wisp.node.proxy.StreamBytes;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2SettingsFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.util.concurrent.TimeUnit;

/**
 * One h2c connection (prior knowledge, as gRPC servers take it) inside one HBONE stream to an
 * endpoint, shared by many requests, for the {@link UpstreamPool}. It takes streams while it has fewer
 * than the endpoint's SETTINGS_MAX_CONCURRENT_STREAMS open ({@value UpstreamPool#DEFAULT_STREAMS}
 * until the SETTINGS came); after a GOAWAY, the end or reset of its HBONE stream, or
 * {@link UpstreamPool#idleNanos} without a stream, it takes none, and its HBONE stream ends once its
 * last stream did.
 *
 * <p>Pipeline of the HBONE stream: {@link StreamEnd}, {@link StreamBytes}, Netty's HTTP/2 client codec and
 * multiplexer (each request a child stream), and {@link Watch} (the connection's SETTINGS and GOAWAY).
 *
 * <p>Threads: {@code streams}, {@code closed}, {@code idle} and {@code idleSince} are guarded by the
 * endpoint's {@link UpstreamPool.Slot}; {@code limit} is written by the tunnel's loop, read by any.
 */
final class H2Upstream {
    private final UpstreamPool pool;
    private final UpstreamPool.Slot slot;
    /** The tunnel, once the endpoint's first SETTINGS came (so its stream limit is known). */
    private volatile Promise<Http2StreamChannel> ready;
    private volatile int limit = UpstreamPool.DEFAULT_STREAMS;
    /** Guarded by slot. */
    private int streams;
    private boolean closed;
    private boolean idle;
    private long idleSince;
    private String why = "closed";

    H2Upstream(UpstreamPool pool, UpstreamPool.Slot slot) {
        this.pool = pool;
        this.slot = slot;
    }

    ChannelHandler[] handlers() {
        return new ChannelHandler[]{new StreamEnd(this::ended), new StreamBytes(),
                Http2FrameCodecBuilder.forClient().build(),
                new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()), new Watch()};
    }

    void open(Future<Http2StreamChannel> tunnel, EventExecutor executor) {
        ready = executor.newPromise();
        tunnel.addListener((Future<Http2StreamChannel> f) -> {
            if (!f.isSuccess()) {
                // Off the list first, so that the requests waiting on it ask for another connection.
                synchronized (slot) {
                    close("refused");
                }
                pool.retired(true, "refused");
                ready.tryFailure(f.cause());
            }
        });
    }

    Future<Http2StreamChannel> ready() {
        return ready;
    }

    /** Whether the connection is being set up: its stream limit is not known yet (under the slot's lock). */
    boolean pending() {
        assert Thread.holdsLock(slot);
        return !closed && !ready.isDone();
    }

    /**
     * One more stream, if there is room (under the slot's lock); a connection whose SETTINGS did not
     * come yet takes one only, so that none is sent beyond a limit not known yet.
     */
    boolean take() {
        assert Thread.holdsLock(slot);
        if (closed || streams >= limit || (streams >= 1 && !ready.isDone())) {
            return false;
        }
        streams++;
        if (idle) {
            idle = false;
            pool.h2Idle(false);
        }
        return true;
    }

    /** The endpoint refused a stream the count allowed: no more until one ends. */
    void full() {
        synchronized (slot) {
            limit = Math.max(1, streams - 1);
        }
    }

    /** A stream ended (or was never opened). */
    void release() {
        boolean endTunnel;
        long since;
        synchronized (slot) {
            streams--;
            endTunnel = closed && streams == 0;
            if (closed || streams > 0) {
                since = 0;
            } else {
                idle = true;
                pool.h2Idle(true);
                idleSince = since = System.nanoTime();
            }
        }
        Future<Http2StreamChannel> t = ready;
        if (!t.isSuccess()) {
            return;
        }
        Http2StreamChannel tunnel = t.getNow();
        if (endTunnel) {
            Forwarder.finish(tunnel);
        } else if (since != 0) {
            tunnel.eventLoop().schedule(() -> expire(tunnel, since), pool.idleNanos(), TimeUnit.NANOSECONDS);
        }
    }

    private void expire(Http2StreamChannel tunnel, long since) {
        synchronized (slot) {
            if (closed || streams > 0 || idleSince != since) {
                return;
            }
            close("idle");
        }
        Forwarder.finish(tunnel);
    }

    /** Takes no new streams from now (under the slot's lock). */
    private void close(String reason) {
        assert Thread.holdsLock(slot);
        if (closed) {
            return;
        }
        closed = true;
        why = reason;
        slot.h2.remove(this);
        if (idle) {
            idle = false;
            pool.h2Idle(false);
        }
    }

    /** The endpoint's agent ended or reset the HBONE stream: the connection in it is over. Tunnel loop. */
    private void ended() {
        synchronized (slot) {
            close("closed");
        }
        Future<Http2StreamChannel> t = ready;
        if (t.isSuccess() && t.getNow().isActive()) {
            Forwarder.endOurSide(t.getNow());
        }
    }

    /** The connection's SETTINGS (its stream limit) and GOAWAY, and the tunnel's end. */
    private final class Watch extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            if (msg instanceof Http2SettingsFrame s) {
                if (s.settings().maxConcurrentStreams() != null) {
                    limit = (int) Math.min(Integer.MAX_VALUE, s.settings().maxConcurrentStreams());
                }
                ready.trySuccess((Http2StreamChannel) c.channel());
            }
            if (msg instanceof Http2GoAwayFrame) {
                boolean end;
                synchronized (slot) {
                    close("goaway");
                    end = streams == 0;
                }
                if (end) {
                    Forwarder.finish((Http2StreamChannel) c.channel());
                }
            }
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
            String reason;
            synchronized (slot) {
                close("closed");
                reason = why;
            }
            pool.retired(true, reason);
            ready.tryFailure(new java.io.IOException("the endpoint's HTTP/2 connection ended before its SETTINGS"));
            c.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            synchronized (slot) {
                close("error");
            }
            c.close();
        }
    }
}
