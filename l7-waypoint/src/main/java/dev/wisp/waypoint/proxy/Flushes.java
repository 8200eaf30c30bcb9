package dev.wisp.waypoint.proxy;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerAdapter;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.flush.FlushConsolidationHandler;

/**
 * One flush per event-loop turn on the waypoint's HBONE connections, instead of one per write. Each answer
 * and each upstream request is a {@code writeAndFlush} on its stream, and a flush of a stream is a flush of
 * its connection: a TLS record sealed and a {@code write} system call each. Netty's
 * {@link FlushConsolidationHandler}, put between the connection's TLS and its HTTP/2 codec, holds the flushes
 * that come while the connection is being read until the read ends, and those that come from elsewhere (an
 * answer read from another connection) until the event loop's next task, at most {@link #EXPLICIT_AFTER}
 * held; so the writes of one turn go out as few records in one system call. Nothing is held past the turn:
 * no latency is added beyond the turn's own work. A close flushes first.
 *
 * <p>On the waypoint's connections only (its listener's and its pool's); the node agents' are unchanged.
 */
final class Flushes {
    static final String NAME = "flush-per-turn";
    /** Flushes held at most before one goes out anyway (Netty's default). */
    static final int EXPLICIT_AFTER = FlushConsolidationHandler.DEFAULT_EXPLICIT_FLUSH_AFTER_FLUSHES;

    private Flushes() {}

    /** Adds the consolidation to {@code connection} once (on its event loop): before its HTTP/2 codec. */
    static void consolidate(Channel connection) {
        if (connection.eventLoop().inEventLoop()) {
            add(connection.pipeline());
        } else {
            connection.eventLoop().execute(() -> add(connection.pipeline()));
        }
    }

    private static void add(ChannelPipeline p) {
        ChannelHandlerContext codec = p.context(Http2ConnectionHandler.class);
        if (codec != null && p.get(NAME) == null) {
            p.addBefore(codec.name(), NAME, new FlushConsolidationHandler(EXPLICIT_AFTER, true));
        }
    }

    /**
     * A handler for the pipeline of a stream the waypoint opens: as it is added, it consolidates the flushes
     * of the stream's connection and leaves.
     */
    static ChannelHandlerAdapter onParent() {
        return new ChannelHandlerAdapter() {
            @Override
            public void handlerAdded(ChannelHandlerContext c) {
                if (c.channel().parent() != null) {
                    consolidate(c.channel().parent());
                }
                c.pipeline().remove(this);
            }
        };
    }
}
