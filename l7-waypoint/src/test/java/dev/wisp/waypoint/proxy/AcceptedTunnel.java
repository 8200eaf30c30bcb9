package dev.wisp.waypoint.proxy;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.util.ReferenceCountUtil;
import java.util.function.Supplier;

/**
 * A test endpoint's end of an HBONE stream (an {@code HboneServer}'s stream handler): the CONNECT is
 * answered 200 and counted, then the stream's pipeline becomes {@code handlers} (new ones per stream).
 */
final class AcceptedTunnel extends ChannelInboundHandlerAdapter {
    private final Runnable counted;
    private final Supplier<ChannelHandler[]> handlers;

    AcceptedTunnel(Runnable counted, Supplier<ChannelHandler[]> handlers) {
        this.counted = counted;
        this.handlers = handlers;
    }

    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
        ReferenceCountUtil.release(msg);
        if (!(msg instanceof Http2HeadersFrame)) {
            c.close();
            return;
        }
        counted.run();
        c.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200")));
        c.pipeline().addLast(handlers.get());
        c.pipeline().remove(this);
    }
}
