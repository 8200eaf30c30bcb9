package dev.wisp.node.proxy;

import dev.wisp.node.telemetry.ConnectionLabels;

import dev.wisp.node.tls.HboneTls;
import dev.wisp.spiffe.SpiffeId;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http3.DefaultHttp3DataFrame;
import io.netty.handler.codec.http3.DefaultHttp3Headers;
import io.netty.handler.codec.http3.DefaultHttp3HeadersFrame;
import io.netty.handler.codec.http3.Http3DataFrame;
import io.netty.handler.codec.http3.Http3Headers;
import io.netty.handler.codec.http3.Http3HeadersFrame;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.util.Optional;
import javax.net.ssl.SSLSession;

/**
 * The framing an HBONE stream runs on — an HTTP/2 stream or an HTTP/3 (QUIC) request stream — as
 * far as the tunnel code needs it: the CONNECT request and its answer, the connection's verified
 * peer, and how the stream joins a {@link Relay}. {@link InboundStream} and the outbound CONNECT
 * request run the same logic over both; only these few operations differ.
 *
 * <p>Stateless; every method runs on the stream's event loop.
 */
sealed interface StreamProtocol {
    StreamProtocol H2 = new Http2();
    StreamProtocol H3 = new Http3();

    /**
     * A HEADERS frame's fields that HBONE reads.
     *
     * @param method {@code :method} (a request), or null
     * @param authority {@code :authority} (a request), or null
     * @param status {@code :status} (a response), or null
     * @param forwarded the {@code forwarded} header, or null
     * @param endStream whether the frame ended the stream (HTTP/2 only: HTTP/3 ends a stream with FIN)
     */
    record Head(CharSequence method, CharSequence authority, CharSequence status, CharSequence forwarded,
            boolean endStream) {}

    /** {@code h2} or {@code h3}: what flows and metrics show as the request protocol. */
    default String label() {
        return this instanceof Http3 ? ConnectionLabels.H3 : ConnectionLabels.H2;
    }

    /** The head of {@code msg} when it is a HEADERS frame, else empty. Does not release it. */
    Optional<Head> head(Object msg);

    /** Whether {@code msg} is the peer's reset of the stream. */
    boolean isReset(Object msg);

    /** The SPIFFE ID the stream's connection verified for its peer. */
    Optional<SpiffeId> peerId(Channel stream);

    /** The TLS session of the stream's connection; empty when the connection has no TLS (the fuzz harness). */
    Optional<SSLSession> session(Channel stream);

    /** The peer's UDP or TCP address of the stream's connection. */
    InetSocketAddress remote(Channel stream);

    /** This agent's address of the stream's connection. */
    InetSocketAddress local(Channel stream);

    /** Answers {@code status}; with {@code end}, the stream then ends and closes. */
    ChannelFuture respond(ChannelHandlerContext c, int status, boolean end);

    /** Sends the CONNECT request. */
    ChannelFuture request(ChannelHandlerContext c, CharSequence authority, CharSequence forwarded);

    /** Prepares the stream for {@link Relay#join}, which then sees raw bytes and FIN as on TCP (HTTP/3). */
    void toRelay(Channel stream);

    /** HTTP/2 streams: child channels of the TLS connection, frames as Netty's HTTP/2 frame types. */
    final class Http2 implements StreamProtocol {
        @Override
        public Optional<Head> head(Object msg) {
            return msg instanceof Http2HeadersFrame f
                    ? Optional.of(new Head(f.headers().method(), f.headers().authority(), f.headers().status(),
                            f.headers().get("forwarded"), f.isEndStream()))
                    : Optional.empty();
        }

        @Override
        public boolean isReset(Object msg) {
            return msg instanceof Http2ResetFrame;
        }

        @Override
        public Optional<SpiffeId> peerId(Channel stream) {
            return stream.parent().attr(HboneServer.PEER_ID).get();
        }

        @Override
        public Optional<SSLSession> session(Channel stream) {
            return Optional.ofNullable(stream.parent().pipeline().get(SslHandler.class))
                    .map(ssl -> ssl.engine().getSession());
        }

        @Override
        public InetSocketAddress remote(Channel stream) {
            return (InetSocketAddress) stream.parent().remoteAddress();
        }

        @Override
        public InetSocketAddress local(Channel stream) {
            return (InetSocketAddress) stream.parent().localAddress();
        }

        @Override
        public ChannelFuture respond(ChannelHandlerContext c, int status, boolean end) {
            ChannelFuture f = c.writeAndFlush(new DefaultHttp2HeadersFrame(
                    new DefaultHttp2Headers().status(String.valueOf(status)), end));
            return end ? f.addListener(ChannelFutureListener.CLOSE) : f;
        }

        @Override
        public ChannelFuture request(ChannelHandlerContext c, CharSequence authority, CharSequence forwarded) {
            return c.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().method("CONNECT")
                    .authority(authority).add("forwarded", forwarded), false));
        }

        @Override
        public void toRelay(Channel stream) {}
    }

    /**
     * HTTP/3 request streams (RFC 9114 §4.4 CONNECT): QUIC stream channels whose parent is the QUIC
     * connection; the end of the stream is the QUIC FIN (half-closure on), a reset a QUIC error.
     */
    final class Http3 implements StreamProtocol {
        @Override
        public Optional<Head> head(Object msg) {
            if (!(msg instanceof Http3HeadersFrame f)) {
                return Optional.empty();
            }
            Http3Headers h = f.headers();
            return Optional.of(new Head(h.method(), h.authority(), h.status(), h.get("forwarded"), false));
        }

        @Override
        public boolean isReset(Object msg) {
            return false; // a QUIC RESET_STREAM arrives as an exception on the stream
        }

        @Override
        public Optional<SpiffeId> peerId(Channel stream) {
            return session(stream).flatMap(HboneTls::peerId);
        }

        @Override
        public Optional<SSLSession> session(Channel stream) {
            QuicChannel quic = (QuicChannel) stream.parent();
            return Optional.ofNullable(quic.sslEngine()).map(e -> e.getSession());
        }

        @Override
        public InetSocketAddress remote(Channel stream) {
            return (InetSocketAddress) ((QuicChannel) stream.parent()).remoteSocketAddress();
        }

        @Override
        public InetSocketAddress local(Channel stream) {
            return (InetSocketAddress) ((QuicChannel) stream.parent()).localSocketAddress();
        }

        @Override
        public ChannelFuture respond(ChannelHandlerContext c, int status, boolean end) {
            Http3Headers h = new DefaultHttp3Headers().status(String.valueOf(status));
            ChannelFuture f = c.writeAndFlush(new DefaultHttp3HeadersFrame(h));
            if (!end) {
                return f;
            }
            return f.addListener((ChannelFutureListener) x -> ((QuicStreamChannel) c.channel()).shutdownOutput()
                    .addListener(ChannelFutureListener.CLOSE));
        }

        @Override
        public ChannelFuture request(ChannelHandlerContext c, CharSequence authority, CharSequence forwarded) {
            Http3Headers h = new DefaultHttp3Headers().method("CONNECT").authority(authority);
            h.add("forwarded", forwarded);
            return c.writeAndFlush(new DefaultHttp3HeadersFrame(h));
        }

        @Override
        public void toRelay(Channel stream) {
            stream.pipeline().addLast("h3-data", new DataFrames());
        }
    }

    /**
     * Between an HTTP/3 request stream's codec and the relay: DATA payloads up as bytes, bytes down
     * as DATA frames; trailers and unknown frames are dropped.
     *
     * <p>An empty write (what the relay writes before it sends FIN) completes only when every DATA
     * frame written before it has been handed to QUIC. This ordering is needed because Netty's
     * {@code QuicStreamChannel.shutdownOutput} (4.2.18) sends FIN at once, ahead of writes still
     * queued for stream flow control, which then fail: data loss, seen as a tunnel cut short
     * ({@code Http3LoopbackTest} echoes 16 MiB and failed that way before this).
     */
    final class DataFrames extends ChannelDuplexHandler {
        /** The stream's loop only. */
        private ChannelFuture lastWrite;

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            if (msg instanceof Http3DataFrame d) {
                c.fireChannelRead(d.content());
            } else {
                ReferenceCountUtil.release(msg);
            }
        }

        @Override
        public void write(ChannelHandlerContext c, Object msg, ChannelPromise promise) {
            if (msg instanceof ByteBuf b && !b.isReadable()) {
                b.release();
                if (lastWrite == null || lastWrite.isDone()) {
                    promise.trySuccess();
                } else {
                    lastWrite.addListener(f -> promise.trySuccess());
                }
            } else if (msg instanceof ByteBuf b) {
                lastWrite = c.write(new DefaultHttp3DataFrame(b), promise);
            } else {
                c.write(msg, promise);
            }
        }
    }
}
