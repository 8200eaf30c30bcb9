package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * HBONE CONNECT streams for a caller that speaks over the stream itself (the waypoint sends one
 * HTTP/1.1 request per stream), from the agent's {@link HbonePool}: the CONNECT goes out, and only
 * when the peer answers 200 are the caller's handlers put on the stream and the promise completed;
 * any other answer fails the promise with {@link Refused} whose {@link Outcome} says what
 * the peer answered ({@link Outbound#answer}, the agent's own reading: 401 is its policy's denial).
 * A 421 (the peer no longer takes the certificate the pooled connection was made with, and sent
 * GOAWAY) is retried once on a new stream, hence a new connection, as {@link Outbound} does
 * ({@link ConnectAnswer}); the promise completes with that second stream's outcome.
 *
 * <p>Threads: the stream's handlers run on its event loop; frames that arrive in the same read as
 * the 200 are held and replayed into the caller's handlers, in order. Stateless; nothing to close.
 */
public final class HboneTunnel {
    private HboneTunnel() {}

    /** The tunnel was not set up: {@link #outcome} says why (the peer's answer, or the failure). */
    public static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;
        private final transient Outcome outcome;

        Refused(Outcome outcome) {
            super(outcome.reason());
            this.outcome = outcome;
        }

        public Outcome outcome() {
            return outcome;
        }
    }

    /**
     * Opens a stream to {@code key}'s HBONE server with CONNECT {@code target}; on 200,
     * {@code handlers} (new instances each call) are added to the stream's pipeline and auto-read is
     * turned on. The stream is the caller's to close. The future's listeners run on {@code executor}.
     */
    public static Future<Http2StreamChannel> open(HbonePool pool, PoolKey key, InetSocketAddress target,
            Supplier<ChannelHandler[]> handlers, EventExecutor executor) {
        requireNonNull(handlers, "handlers");
        Http2Headers connect = new DefaultHttp2Headers().method("CONNECT").authority(Hbone.authority(target));
        return open(pool, key, connect, stream -> {
            stream.pipeline().addLast(handlers.get());
            stream.config().setAutoRead(true);
        }, executor);
    }

    /**
     * Opens a stream with the CONNECT request {@code connect}; on 200, {@code onOpen} runs on the
     * stream's event loop before any frame that followed the answer is passed on (and with auto-read
     * still off), then the future completes. {@link Outbound} joins its relay there.
     */
    static Future<Http2StreamChannel> open(HbonePool pool, PoolKey key, Http2Headers connect,
            Consumer<Http2StreamChannel> onOpen, EventExecutor executor) {
        requireNonNull(pool, "pool");
        requireNonNull(connect, "connect");
        Promise<Http2StreamChannel> promise = executor.newPromise();
        attempt(pool, key, connect, onOpen, executor, promise, true);
        return promise;
    }

    /** One CONNECT stream for {@code promise}; with {@code mayRetry}, a 421 opens one more. */
    private static void attempt(HbonePool pool, PoolKey key, Http2Headers connect, Consumer<Http2StreamChannel> onOpen,
            EventExecutor executor, Promise<Http2StreamChannel> promise, boolean mayRetry) {
        Runnable again = mayRetry ? () -> attempt(pool, key, connect, onOpen, executor, promise, false) : null;
        pool.open(key, new ChannelInitializer<Http2StreamChannel>() {
            @Override
            protected void initChannel(Http2StreamChannel stream) {
                stream.pipeline().addLast("hbone-connect", new Connect(connect, onOpen, promise, again));
            }
        }, executor.newPromise()).addListener((Future<Http2StreamChannel> f) -> {
            if (!f.isSuccess()) {
                promise.tryFailure(new Refused(f.cause() instanceof HboneException h
                        ? h.outcome()
                        : new Outcome.Unreachable("HBONE stream to " + key.destination()
                                + " could not be opened: " + f.cause().getMessage())));
            }
        });
    }

    /** Sends the CONNECT, reads the answer, then makes way for the caller's handlers. */
    private static final class Connect extends ConnectAnswer {
        private final Http2Headers headers;
        private final Consumer<Http2StreamChannel> onOpen;
        private final Promise<Http2StreamChannel> promise;

        Connect(Http2Headers headers, Consumer<Http2StreamChannel> onOpen, Promise<Http2StreamChannel> promise,
                Runnable again) {
            super(String.valueOf(headers.authority()), again);
            this.headers = headers;
            this.onOpen = onOpen;
            this.promise = promise;
        }

        @Override
        ChannelFuture request(ChannelHandlerContext c) {
            return c.writeAndFlush(new DefaultHttp2HeadersFrame(headers, false));
        }

        @Override
        Outcome read(Object answer) {
            return Outbound.answer(headers.authority(), answer);
        }

        @Override
        boolean answered(ChannelHandlerContext c, Outcome answer) {
            if (!(answer instanceof Outcome.Allowed)) {
                promise.tryFailure(new Refused(answer));
                c.close();
                return false;
            }
            Http2StreamChannel stream = (Http2StreamChannel) c.channel();
            onOpen.accept(stream);
            promise.trySuccess(stream);
            return true;
        }

        @Override
        void unanswered(Outcome why) {
            promise.tryFailure(new Refused(why));
        }
    }
}
