package dev.wisp.waypoint.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2MultiplexCodecBuilder;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import java.util.List;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the application speaks inside one HBONE tunnel to the waypoint, told by its first bytes as
 * a prior-knowledge HTTP/2 client (h2c, what gRPC's plaintext clients send) opens with the HTTP/2
 * connection preface ({@code PRI * HTTP/2.0…}) and an HTTP/1.1 request line never does: the decision
 * is made at the first byte that differs from the preface, or once all 24 bytes of it came.
 *
 * <p>HTTP/1.1: Netty's server codec (request line and headers at most 8 KiB, its defaults), an
 * aggregator (bodies at most {@link Forwarder#MAX_BODY}, 413 above) and one {@link Exchange} for the
 * tunnel's requests, one at a time. HTTP/2: Netty's frame codec as a server (at most
 * {@link #MAX_STREAMS} concurrent streams, header lists at most {@link #MAX_HEADER_LIST} bytes,
 * Netty's rapid-reset limit left on), each stream its own child channel carrying one request as an
 * HTTP/1.1 message (Netty's stream-frame codec, stream 1 included: {@code :authority} becomes {@code host}, trailers
 * the message's trailing headers), the same aggregator and its own {@link Exchange}. A tunnel can
 * thus make the waypoint hold at most {@link #MAX_STREAMS} bodies of {@link Forwarder#MAX_BODY}.
 * A gRPC call is not aggregated ({@link Streaming}): its messages are relayed as they come, and what
 * it holds is bounded by HTTP/2 flow control.
 */
final class InnerProtocol extends ByteToMessageDecoder {
    private static final Logger LOG = LoggerFactory.getLogger(InnerProtocol.class);
    static final int MAX_STREAMS = 100;
    static final long MAX_HEADER_LIST = 16 * 1024;
    private static final ByteBuf PREFACE = Http2CodecUtil.connectionPrefaceBuf();
    private final Function<Boolean, Exchange> exchanges;

    /** @param exchanges a new {@link Exchange} for HTTP/2 ({@code true}: one per stream) or HTTP/1.1 */
    InnerProtocol(Function<Boolean, Exchange> exchanges) {
        this.exchanges = exchanges;
    }

    @Override
    protected void decode(ChannelHandlerContext c, ByteBuf in, List<Object> out) {
        int n = Math.min(in.readableBytes(), PREFACE.readableBytes());
        boolean h2 = true;
        for (int i = 0; i < n && h2; i++) {
            h2 = in.getByte(in.readerIndex() + i) == PREFACE.getByte(i);
        }
        if (h2 && n < PREFACE.readableBytes()) {
            return; // all that came is the preface's beginning: wait for more
        }
        // Last in the pipeline: what follows it now is added last; the bytes kept here go on to it
        // as this handler leaves.
        c.pipeline().addLast(h2 ? http2() : http1());
        c.pipeline().remove(this);
    }

    private ChannelHandler[] http1() {
        return new ChannelHandler[]{new HttpServerCodec(), new HttpObjectAggregator(Forwarder.MAX_BODY), exchanges
                .apply(false)};
    }

    /**
     * Netty's {@code Http2MultiplexCodec}, deprecated for {@code Http2FrameCodec} plus
     * {@code Http2MultiplexHandler}, on purpose: that handler tells a server by its channel's parent
     * being a {@code ServerChannel}, which an HBONE stream's is not, so it took a client's stream 1 for
     * the stream of an HTTP/1.1 upgrade and failed the whole connection (INTERNAL_ERROR, "Client is
     * misconfigured for upgrade requests") for every prior-knowledge client whose first stream is 1
     * (gRPC's and nghttp's begin higher). The codec asks its connection, which knows it is the server.
     */
    @SuppressWarnings("deprecation")
    private ChannelHandler[] http2() {
        return new ChannelHandler[]{Http2MultiplexCodecBuilder.forServer(new ChannelInitializer<Http2StreamChannel>() {
            @Override
            protected void initChannel(Http2StreamChannel stream) {
                stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true), new Streaming(),
                        new HttpObjectAggregator(Forwarder.MAX_BODY), exchanges.apply(true));
            }
        }).initialSettings(Http2Settings.defaultSettings().maxConcurrentStreams(MAX_STREAMS).maxHeaderListSize(
                MAX_HEADER_LIST)).build(), new ConnectionErrors()};
    }

    /**
     * Last on the tunnel's pipeline: a connection error the codec passes on ends here, at debug level (a
     * client that attacks is not worth a warning per connection). The codec answers an HTTP/2 error
     * itself, with GOAWAY and its code (ENHANCE_YOUR_CALM, PROTOCOL_ERROR…) and then the close, and
     * passes it on before it does: closing here first would send a GOAWAY without the error. Anything
     * else closes the tunnel.
     */
    static final class ConnectionErrors extends ChannelInboundHandlerAdapter {
        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            LOG.debug("HTTP/2 inside the tunnel failed: {}", cause.toString());
            if (Http2CodecUtil.getEmbeddedHttp2Exception(cause) == null) {
                c.close();
            }
        }
    }

    /**
     * The first handler behind an HTTP/2 stream's codec: a gRPC request whose head came without
     * END_STREAM is relayed as it comes ({@link StreamedCall}), so the aggregator behind is taken out
     * of its stream's pipeline; any other request is read whole. Leaves after the stream's first message.
     */
    static final class Streaming extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            if (msg instanceof HttpRequest r && !(msg instanceof FullHttpRequest) && Grpc.is(r.headers())) {
                c.pipeline().remove(HttpObjectAggregator.class);
            }
            c.pipeline().remove(this);
            c.fireChannelRead(msg);
        }
    }
}
