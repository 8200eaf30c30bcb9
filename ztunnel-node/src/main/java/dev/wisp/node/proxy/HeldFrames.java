package dev.wisp.node.proxy;

import io.netty.channel.ChannelHandlerContext;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;

/**
 * The frames a stream's first handler holds, in arrival order, while it is still setting the stream
 * up ({@link ConnectAnswer} until the answer is read, {@link InboundStream} until the relay is
 * joined): passed on to the handlers behind it once it has left the pipeline, or released when the
 * stream ends first. Stream's event loop only.
 */
final class HeldFrames {
    private final ArrayDeque<Object> frames = new ArrayDeque<>();

    /** Holds {@code frame} (this now owns its reference) behind those already held. */
    void hold(Object frame) {
        frames.add(frame);
    }

    /** Fires every held frame, in order, from {@code c}: the handler that held them has just left. */
    void passOn(ChannelHandlerContext c) {
        while (!frames.isEmpty()) {
            c.fireChannelRead(frames.poll());
        }
    }

    /** Releases every held frame: the stream ended before it was set up. */
    void release() {
        while (!frames.isEmpty()) {
            ReferenceCountUtil.release(frames.poll());
        }
    }
}
