package dev.wisp.waypoint.proxy;

import dev.wisp.node.proxy.StreamBytes;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.EventLoop;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpRequestEncoder;
import io.netty.handler.codec.http.HttpResponseDecoder;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.Promise;
import java.util.List;

/**
 * One HBONE stream to an endpoint carrying HTTP/1.1 with keep-alive, one request at a time, for the
 * {@link UpstreamPool}. Pipeline: {@link StreamEnd} (sees the endpoint end or reset the stream),
 * {@link StreamBytes}, the request encoder, {@link Decoder}, an aggregator of at most
 * {@link Forwarder#MAX_BODY}, and {@link Reader}, which completes the request's promise.
 *
 * <p>An answer leaves the stream reusable only when it is complete, HTTP/1.1, keeps the connection,
 * and nothing follows it; bytes that come while no request is out, an answer that does not parse, the
 * endpoint ending its side, or a request cancelled in flight retire the stream, so no byte of one
 * request's answer can be read as another's. Retiring ends our side of the stream (END_STREAM) when
 * nothing is in flight, so the endpoint's agent closes it cleanly; else the stream is reset.
 *
 * <p>Threads: {@code current}, {@code answering} and {@code onStale} belong to the stream's event loop;
 * {@code retired}, {@code ended} and {@code idleSince} are read by the pool from any thread.
 */
final class H1Upstream {
    private final UpstreamPool pool;
    private final UpstreamPool.Slot slot;
    private volatile Http2StreamChannel stream;
    private volatile boolean retired;
    private volatile boolean ended;
    private volatile long idleSince;
    /** The request in flight (stream loop). */
    private Promise<FullHttpResponse> current;
    private HttpMethod method;
    /** Whether a byte of {@code current}'s answer came (stream loop). */
    private boolean answering;
    /** What to do when the stream proves closed before {@code current} was answered at all (stream loop). */
    private Runnable onStale;
    private boolean reused;

    H1Upstream(UpstreamPool pool, UpstreamPool.Slot slot) {
        this.pool = pool;
        this.slot = slot;
    }

    ChannelHandler[] handlers() {
        return new ChannelHandler[]{new StreamEnd(this::ended), new StreamBytes(), new HttpRequestEncoder(),
                new Decoder(),
                new HttpObjectAggregator(Forwarder.MAX_BODY), new Reader()};
    }

    void opened(Http2StreamChannel s) {
        this.stream = s;
    }

    EventLoop eventLoop() {
        return stream.eventLoop();
    }

    /** Whether the stream may take a request. */
    boolean usable() {
        return !retired && !ended && stream.isActive();
    }

    long idleSince() {
        return idleSince;
    }

    long idleSince(long now) {
        idleSince = now == 0 ? 1 : now;
        return idleSince;
    }

    /**
     * Sends {@code request} (released here) on this stream; {@code response} completes with the answer or
     * a {@link Forwarder.Failure}. {@code stale} (null: none) is run instead when the stream turns out
     * closed before a byte of the answer came (the request is the caller's to send again). Any thread.
     */
    void exchange(FullHttpRequest request, Promise<FullHttpResponse> response, Runnable stale) {
        Http2StreamChannel s = stream;
        response.addListener(x -> {
            if (!x.isSuccess()) {
                s.eventLoop().execute(() -> cancelled(response));
            }
        });
        s.eventLoop().execute(() -> {
            if (!usable() || current != null) {
                request.release();
                if (stale != null) {
                    stale.run();
                } else {
                    response.tryFailure(new Forwarder.Failure(503, "the upstream stream closed before the request "
                            + "went", true));
                }
                return;
            }
            reused = idleSince != 0;
            current = response;
            method = request.method();
            answering = false;
            onStale = stale;
            s.writeAndFlush(request);
        });
    }

    /** {@code response} ended without an answer (a timeout cancelled it): the stream cannot be trusted. */
    private void cancelled(Promise<FullHttpResponse> response) {
        if (current == response) {
            current = null;
            retire("cancelled");
        }
    }

    /** Closes the stream and counts it (once); off the idle list if it was there. Stream loop. */
    void retire(String reason) {
        if (retired) {
            return;
        }
        retired = true;
        pool.removeIdle(this, slot, 0);
        pool.retired(false, reason);
        Http2StreamChannel s = stream;
        if (s == null || !s.isActive()) {
            return;
        }
        if (current == null) {
            Forwarder.finish(s);
        } else {
            s.close();
        }
    }

    /** Fails the request in flight, if any, with {@code failure}; or runs its stale hook when it may. */
    private void fail(Forwarder.Failure failure) {
        Promise<FullHttpResponse> p = current;
        current = null;
        if (p == null) {
            return;
        }
        if (reused && !answering && onStale != null) {
            onStale.run();
        } else {
            p.tryFailure(failure);
        }
    }

    /** The endpoint's agent ended or reset the stream: it takes no more requests. Stream loop. */
    private void ended() {
        ended = true;
        pool.removeIdle(this, slot, 0);
        if (stream != null && stream.isActive()) {
            // Our side ends too: the stream closes and the decoder reads an answer delimited by the close.
            if (current == null) {
                retire("closed");
            } else {
                StreamBytes.end(stream);
            }
        }
    }

    /**
     * The answer's decoder: a HEAD's answer has no body; bytes while no request is out retire the
     * stream (an endpoint that sent more than its answer said).
     */
    private final class Decoder extends HttpResponseDecoder {
        @Override
        protected void decode(ChannelHandlerContext c, ByteBuf in, List<Object> out) throws Exception {
            if (current == null && in.isReadable()) {
                in.skipBytes(in.readableBytes());
                retire("error");
                return;
            }
            if (in.isReadable()) {
                answering = true;
            }
            super.decode(c, in, out);
        }

        @Override
        protected boolean isContentAlwaysEmpty(HttpMessage msg) {
            return HttpMethod.HEAD.equals(method) || super.isContentAlwaysEmpty(msg);
        }
    }

    /** Completes the request in flight with its answer, then gives the stream back or retires it. */
    private final class Reader extends SimpleChannelInboundHandler<FullHttpResponse> {
        Reader() {
            super(false);
        }

        @Override
        protected void channelRead0(ChannelHandlerContext c, FullHttpResponse msg) {
            Promise<FullHttpResponse> p = current;
            if (p == null) {
                msg.release();
                retire("error");
                return;
            }
            int code = msg.status().code();
            if (!msg.decoderResult().isSuccess() || code == 101) {
                msg.release();
                answering = true;
                fail(new Forwarder.Failure(502, "the endpoint's answer is not HTTP: " + msg.decoderResult().cause()));
                retire("error");
                return;
            }
            if (code >= 100 && code < 200) {
                msg.release(); // an interim answer: the final one follows
                return;
            }
            current = null;
            boolean keep = HttpUtil.isKeepAlive(msg) && msg.protocolVersion().equals(HttpVersion.HTTP_1_1) && !ended
                    && !retired;
            // Back to the pool before the answer is handed on, so the caller's next request finds it.
            if (!keep || !pool.idle(H1Upstream.this, slot)) {
                retire(keep ? "overflow" : "closed");
            }
            if (!p.trySuccess(msg)) {
                msg.release();
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
            ended = true;
            fail(new Forwarder.Failure(503, "the endpoint closed the stream before answering"));
            retire("closed");
            c.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            answering = true;
            fail(new Forwarder.Failure(502, "reading the endpoint's answer: " + cause.getMessage()));
            retire("error");
            c.close();
        }
    }
}
