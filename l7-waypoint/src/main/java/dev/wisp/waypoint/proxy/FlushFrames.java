package dev.wisp.waypoint.proxy;

import dev.wisp.node.proxy.StreamBytes;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import java.util.ArrayList;
import java.util.List;

/**
 * Between an HTTP/1.1 encoder and {@link StreamBytes} on an HBONE stream: the buffers written between
 * two flushes go on as one buffer, so one DATA frame. Netty's HTTP/1.1 encoder writes a message's head
 * and its body as two buffers (a 1 KiB answer does not fit the buffer it sizes for the head), and each
 * DATA frame costs a write through the stream channel and the HTTP/2 connection under it (its promise,
 * flow control, frame header, TLS): one frame per message instead of two.
 *
 * <p>Owns the buffers it holds until the next flush, or until it leaves the pipeline or the stream
 * closes (released then, their writes failed). Anything that is not a buffer (an HTTP/2 frame such as
 * {@link StreamBytes#end}'s) first sends what is held, so the order of writes is kept. Up to
 * {@link #COPY_LIMIT} bytes are copied into one buffer; more are gathered in a composite buffer, not
 * copied. A write's promise completes when the merged write does. On the stream's event loop.
 */
final class FlushFrames extends ChannelOutboundHandlerAdapter {
    static final int COPY_LIMIT = 16 * 1024;
    /** What was written since the last flush (null: nothing). Stream loop. */
    private ByteBuf held;
    /** The promises of the held writes that someone listens to (null: none, the usual case of void promises). */
    private List<ChannelPromise> waiting;

    @Override
    public void write(ChannelHandlerContext c, Object msg, ChannelPromise promise) {
        if (!(msg instanceof ByteBuf b)) {
            send(c);
            c.write(msg, promise);
            return;
        }
        if (held == null) {
            held = b;
        } else {
            held = merge(c, held, b);
        }
        if (!promise.isVoid()) {
            if (waiting == null) {
                waiting = new ArrayList<>(2);
            }
            waiting.add(promise);
        }
    }

    /** {@code a} then {@code b} as one buffer, both consumed: copied when small, else gathered. */
    private static ByteBuf merge(ChannelHandlerContext c, ByteBuf a, ByteBuf b) {
        if (a instanceof CompositeByteBuf composite) {
            return composite.addComponent(true, b);
        }
        int size = a.readableBytes() + b.readableBytes();
        if (size > COPY_LIMIT) {
            return c.alloc().compositeBuffer().addComponents(true, a, b);
        }
        ByteBuf one = c.alloc().buffer(size);
        one.writeBytes(a).writeBytes(b);
        a.release();
        b.release();
        return one;
    }

    @Override
    public void flush(ChannelHandlerContext c) {
        send(c);
        c.flush();
    }

    /** Writes what is held (not flushed), completing its writers' promises with it. */
    private void send(ChannelHandlerContext c) {
        ByteBuf b = held;
        if (b == null) {
            return;
        }
        held = null;
        List<ChannelPromise> ps = waiting;
        waiting = null;
        if (ps == null) {
            c.write(b, c.voidPromise());
            return;
        }
        c.write(b).addListener((ChannelFuture f) -> {
            for (ChannelPromise p : ps) {
                if (f.isSuccess()) {
                    p.trySuccess();
                } else {
                    p.tryFailure(f.cause());
                }
            }
        });
    }

    @Override
    public void close(ChannelHandlerContext c, ChannelPromise promise) {
        send(c);
        c.close(promise);
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext c) {
        ByteBuf b = held;
        held = null;
        if (b != null) {
            b.release();
        }
        List<ChannelPromise> ps = waiting;
        waiting = null;
        if (ps != null) {
            IllegalStateException gone = new IllegalStateException("the stream closed before the write was flushed");
            ps.forEach(p -> p.tryFailure(gone));
        }
    }
}
