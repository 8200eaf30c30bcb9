package dev.wisp.node.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.util.ReferenceCountUtil;

/**
 * The bytes inside an HBONE stream, for the HTTP/1.1 codecs above it: DATA frames in become their
 * payload, buffers out become DATA frames. The other frames of a tunnel (trailing HEADERS) carry no
 * bytes and are dropped; a RST_STREAM closes the stream. Flow control stays the stream's: Netty's
 * HTTP/2 child channel returns window as the payload is consumed.
 *
 * <p>One per stream, on its event loop; used over {@link HboneTunnel} streams and by the waypoint's
 * server streams.
 */
public final class StreamBytes extends ChannelDuplexHandler {
    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
        if (msg instanceof Http2DataFrame data) {
            c.fireChannelRead(data.content());
            return;
        }
        ReferenceCountUtil.release(msg);
        if (msg instanceof Http2ResetFrame) {
            c.close();
        }
    }

    @Override
    public void write(ChannelHandlerContext c, Object msg, ChannelPromise promise) {
        if (msg instanceof ByteBuf b) {
            c.write(new DefaultHttp2DataFrame(b, false), promise);
            return;
        }
        c.write(msg, promise);
    }

    /** Ends the stream's sending side (an empty DATA frame with END_STREAM). */
    public static ChannelFuture end(Channel stream) {
        return stream.writeAndFlush(new DefaultHttp2DataFrame(true));
    }
}
