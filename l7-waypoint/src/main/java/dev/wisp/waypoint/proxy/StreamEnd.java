package dev.wisp.waypoint.proxy;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;

/**
 * Sees the endpoint's agent end (END_STREAM) or reset a kept upstream HBONE stream, for
 * {@link H1Upstream} and {@link H2Upstream}: the frame is passed on first (its bytes may finish an
 * answer), then {@code ended} runs, on the stream's event loop. Holds no buffer.
 */
final class StreamEnd extends ChannelInboundHandlerAdapter {
    private final Runnable ended;

    StreamEnd(Runnable ended) {
        this.ended = ended;
    }

    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
        boolean last = msg instanceof Http2DataFrame d && d.isEndStream()
                || msg instanceof Http2HeadersFrame h && h.isEndStream() || msg instanceof Http2ResetFrame;
        c.fireChannelRead(msg);
        if (last) {
            ended.run();
        }
    }
}
