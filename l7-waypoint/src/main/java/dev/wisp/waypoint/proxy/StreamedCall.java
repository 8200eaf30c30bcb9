package dev.wisp.waypoint.proxy;

import dev.wisp.waypoint.route.Retries;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.EmptyHttpHeaders;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;

/**
 * One gRPC call on an HTTP/2 stream, relayed message by message rather than read whole: the request's
 * head goes to an endpoint of the cluster on a stream of the h2c connection the {@link UpstreamPool}
 * keeps to it inside an HBONE stream, then each DATA frame the client sends is written upstream as it comes, and
 * the endpoint's response head, each DATA frame and its trailers are written back to the client as
 * they come. Neither side is held whole, so a call may carry any number of messages of any total size
 * (server-streaming, client-streaming, bidi); what is held is bounded by flow control: each side stops
 * reading while the other cannot take more (auto-read follows writability, and an HTTP/2 stream that
 * is not read returns no window to its sender).
 *
 * <p>Retries and timeouts of a stream: an attempt whose tunnel or stream could not be opened (the
 * endpoint never saw the call) goes to the next endpoint as {@link Retries#retry} allows for a connect
 * failure; once the head went upstream the call is started and never retried, whatever the answer.
 * The route's timeout and its per-try timeout (the shorter of the two) bound the wait for the
 * response's head (504 before it); once the response began, the call lasts as long as its two ends
 * keep it (a gRPC deadline is theirs to enforce). A stream is not mirrored. When either end goes
 * before the call ended, the other is reset (on the upstream side, that one stream of the shared
 * connection).
 *
 * <p>Threads: everything runs on the client stream's event loop ({@code down}); the upstream stream's
 * events are passed to it.
 */
final class StreamedCall {
    /** What the call tells its {@link Exchange}, on the client stream's loop. */
    interface Events {
        /** No answer began: the waypoint answers the client with {@code r.status()} itself. */
        void refused(Attempts.Result r);

        /** The endpoint's response head, before it goes to the client (the route's header edits). */
        void began(HttpResponse head, Attempts.Result r);

        /**
         * The call ended, answered or cut: {@code status} the client got (0 when it went before any
         * answer), its gRPC status, and the bodies' sizes.
         */
        void ended(int status, String grpcStatus, long requestBytes, long responseBytes, Attempts.Result r);
    }

    private final ClusterTries tries;
    private final Retries plan;
    private final HttpRequest head;
    private final ChannelHandlerContext down;
    private final EventExecutor loop;
    private final Events events;
    private final ArrayDeque<HttpContent> held = new ArrayDeque<>();
    private ScheduledFuture<?> deadline;
    private Http2StreamChannel up;
    private boolean requestEnded;
    private boolean done;
    private HttpResponse answer;
    private long requestBytes;
    private long responseBytes;

    private StreamedCall(ClusterTries tries, HttpRequest head, ChannelHandlerContext down, Events events) {
        this.tries = tries;
        this.plan = tries.plan;
        this.head = head;
        this.down = down;
        this.loop = down.executor();
        this.events = events;
    }

    /**
     * Starts the call of {@code head} (as the route sends it upstream) by {@code tries}; the client's
     * DATA follow through {@link #request}. Call on {@code down}'s loop.
     */
    static StreamedCall start(ClusterTries tries, HttpRequest head, ChannelHandlerContext down, Events events) {
        StreamedCall call = new StreamedCall(tries, head, down, events);
        down.channel().config().setAutoRead(false); // until the upstream stream can take the request
        long perTry = call.plan.perTry().toMillis();
        long total = call.plan.timeout().toMillis();
        long wait = perTry == 0 ? total : total == 0 ? perTry : Math.min(perTry, total);
        if (wait > 0) {
            call.deadline = call.loop.schedule(() -> call.refuse(504, "no answer within " + wait + " ms"), wait,
                    TimeUnit.MILLISECONDS);
        }
        call.attempt(1);
        return call;
    }

    private void attempt(int n) {
        if (done) {
            return;
        }
        Forwarder.Endpoint to;
        try {
            to = tries.next();
        } catch (Forwarder.Failure e) {
            refuse(e.status(), e.getMessage());
            return;
        }
        tries.forwarder.upstreams().stream(to, loop, new FromEndpoint()).addListener((Future<Http2StreamChannel> s) -> {
            if (!s.isSuccess()) {
                unsent(n, s.cause().getMessage());
                return;
            }
            if (done) {
                s.getNow().close();
                return;
            }
            up = s.getNow();
            up.write(head);
            while (!held.isEmpty()) {
                up.write(held.poll());
            }
            up.flush();
            down.channel().config().setAutoRead(!requestEnded && up.isWritable());
        });
    }

    /** The attempt never reached the endpoint: the next one, as the plan allows a connect failure. */
    private void unsent(int n, String reason) {
        if (done) {
            return;
        }
        if (plan.retry(n, head.method().name(), Retries.Outcome.CONNECT_FAILURE, 503)) {
            loop.schedule(() -> attempt(n + 1), plan.backoff(n).toMillis(), TimeUnit.MILLISECONDS);
        } else {
            refuse(503, reason);
        }
    }

    /** A part of the client's request (released here, or by the upstream write). */
    void request(HttpContent part) {
        if (done || requestEnded) {
            part.release();
            return;
        }
        requestBytes += part.content().readableBytes();
        requestEnded = part instanceof LastHttpContent;
        if (up == null) {
            held.add(part);
            return;
        }
        up.writeAndFlush(part);
        if (!up.isWritable()) {
            down.channel().config().setAutoRead(false);
        }
    }

    /** The client stream's writability changed: the endpoint's answer is read again once it can take more. */
    void clientWritable() {
        if (up != null && down.channel().isWritable()) {
            up.config().setAutoRead(true);
        }
    }

    /** The client stream closed (reset, or the tunnel went): the call is cut. */
    void clientGone() {
        if (!done) {
            end(answer == null ? 0 : answer.status().code(), "the client's stream closed before the answer ended",
                    EmptyHttpHeaders.INSTANCE);
        }
    }

    private void fromEndpoint(Object msg) {
        if (done) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (msg instanceof HttpResponse h) {
            answer = h;
            if (deadline != null) {
                deadline.cancel(false);
            }
            events.began(h, result(h.status().code(), "forwarded"));
        }
        if (answer == null) {
            ReferenceCountUtil.release(msg); // not HTTP: the codec gives a head first
            return;
        }
        if (msg instanceof HttpContent part) {
            responseBytes += part.content().readableBytes();
        }
        boolean last = msg instanceof LastHttpContent;
        var trailers = msg instanceof LastHttpContent l ? l.trailingHeaders() : EmptyHttpHeaders.INSTANCE;
        down.writeAndFlush(msg);
        if (last) {
            end(answer.status().code(), "forwarded", trailers);
        } else if (!down.channel().isWritable()) {
            up.config().setAutoRead(false);
        }
    }

    private void endpointGone() {
        if (done) {
            return;
        }
        if (answer == null) {
            refuse(503, "the endpoint closed the stream before answering");
            return;
        }
        down.close(); // the answer began: the client's stream is reset, as the endpoint's was
        end(answer.status().code(), "the endpoint's stream closed before its answer ended", EmptyHttpHeaders.INSTANCE);
    }

    /** The waypoint answers the client itself (nothing of an answer was sent). */
    private void refuse(int status, String reason) {
        if (done) {
            return;
        }
        stop();
        events.refused(result(status, reason));
    }

    private void end(int status, String reason, io.netty.handler.codec.http.HttpHeaders trailers) {
        stop();
        if (up != null && up.isActive()) {
            up.close(); // the answer ended; a request still open is reset on the shared connection
        }
        var headers = answer == null ? EmptyHttpHeaders.INSTANCE : answer.headers();
        events.ended(status, Grpc.status(status, headers, trailers), requestBytes, responseBytes, result(status,
                reason));
    }

    private void stop() {
        done = true;
        if (deadline != null) {
            deadline.cancel(false);
        }
        while (!held.isEmpty()) {
            held.poll().release();
        }
        if (answer == null && up != null) {
            up.close();
        }
    }

    private Attempts.Result result(int status, String reason) {
        return tries.result(null, status, reason);
    }

    /** The upstream stream's end of the call: hands its events to the client stream's loop. */
    private final class FromEndpoint extends ChannelInboundHandlerAdapter {
        private void onLoop(Runnable r) {
            if (loop.inEventLoop()) {
                r.run();
            } else {
                loop.execute(r);
            }
        }

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            onLoop(() -> fromEndpoint(msg));
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext c) {
            onLoop(() -> {
                if (up != null && up.isWritable() && !requestEnded && !done) {
                    down.channel().config().setAutoRead(true);
                }
            });
            c.fireChannelWritabilityChanged();
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
            onLoop(StreamedCall.this::endpointGone);
            c.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            c.close();
        }
    }
}
