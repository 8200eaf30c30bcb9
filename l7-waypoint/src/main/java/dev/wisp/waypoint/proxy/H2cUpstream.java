package dev.wisp.waypoint.proxy;

import dev.wisp.node.proxy.StreamBytes;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;

/**
 * The upstream leg of a request that came over HTTP/2: an HTTP/2 client connection with prior
 * knowledge (h2c, as gRPC servers take it) inside the new HBONE stream to the endpoint, and one
 * stream on it carrying the request (Netty's stream-frame codec: {@code host} becomes
 * {@code :authority}, trailing headers a trailing HEADERS frame) and reading the response whole, its
 * trailers (gRPC's {@code grpc-status}) as the message's trailing headers. The connection ends with
 * the HBONE stream ({@link Forwarder}).
 */
final class H2cUpstream {
    private H2cUpstream() {}

    /** The handlers of an HBONE stream that carries an HTTP/2 connection (new instances each call). */
    static ChannelHandler[] connection() {
        return new ChannelHandler[]{new StreamBytes(), Http2FrameCodecBuilder.forClient().build(),
                new Http2MultiplexHandler(new ChannelInboundHandlerAdapter())};
    }

    /**
     * Opens a stream on {@code tunnel}'s connection and sends {@code request} (released here); the
     * answer or a {@link Forwarder.Failure} completes {@code response}.
     */
    static void send(Http2StreamChannel tunnel, FullHttpRequest request, Promise<FullHttpResponse> response) {
        stream(tunnel, tunnel.eventLoop().newPromise(), new HttpObjectAggregator(Forwarder.MAX_BODY),
                new Forwarder.Answer(response)).addListener((Future<Http2StreamChannel> f) -> {
                    if (!f.isSuccess()) {
                        request.release();
                        response.tryFailure(new Forwarder.Failure(503,
                                "HTTP/2 stream to the endpoint could not be opened: " + f.cause().getMessage(), true));
                        return;
                    }
                    f.getNow().writeAndFlush(request);
                });
    }

    /**
     * Opens a stream on {@code tunnel}'s connection that speaks HTTP/1.1 messages (Netty's stream-frame
     * codec, then {@code handlers}); {@code opened} (its listeners run on its executor) completes with it.
     */
    static Future<Http2StreamChannel> stream(Http2StreamChannel tunnel, Promise<Http2StreamChannel> opened,
            ChannelHandler... handlers) {
        return new Http2StreamChannelBootstrap(tunnel).handler(new ChannelInitializer<Http2StreamChannel>() {
            @Override
            protected void initChannel(Http2StreamChannel stream) {
                stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false)).addLast(handlers);
            }
        }).open(opened);
    }
}
