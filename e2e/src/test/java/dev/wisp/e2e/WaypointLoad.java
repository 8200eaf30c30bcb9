package dev.wisp.e2e;

import dev.wisp.testing.EchoSinkLoad;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrame;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * The load generator of the waypoint benchmark ({@link WaypointBenchE2eTest}), run in a pod: HTTP/1.1
 * or HTTP/2 (h2c, prior knowledge) GETs at a fixed rate over a few connections, each request's latency
 * measured from its intended send time (request i at {@code start + i / rate}: coordinated omission
 * corrected, a stall delays the requests behind it and they count it). {@code repl} prints {@code
 * ready}, then runs one command per line and prints one line of {@code key=value} pairs:
 *
 * <p>{@code load h1|h2 HOST PORT AUTHORITY RATE SECONDS CONNECTIONS [GRACE]}: RATE GETs of {@code /} per second
 * for SECONDS, spread in turn over CONNECTIONS connections opened first. HTTP/1.1 sends one request at a
 * time per connection (a request due while its connection waits for an answer queues behind it); h2
 * opens a stream per request at once, unless the server's stream limit is reached ({@link H2}). Answers: {@code ok} (status 200 with a body of {@link #SIZE}
 * bytes), {@code bad} (anything else), and {@code rq_*} percentiles (µs) of every answered request and
 * {@code rq_failed} (not answered within GRACE seconds, 10 by default, of the schedule's end, or a
 * connection lost); h2's
 * {@code waited} and {@code refused} ({@link H2}).
 */
public final class WaypointLoad {
    static final int SIZE = 1024;

    private WaypointLoad() {}

    public static void main(String[] a) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        System.out.println("ready");
        System.out.flush();
        for (String line; (line = in.readLine()) != null;) {
            String[] c = line.trim().split("\\s+");
            String out;
            try {
                out = load(group, c[1].equals("h2"), new InetSocketAddress(c[2], Integer.parseInt(c[3])), c[4],
                        Integer.parseInt(c[5]), Integer.parseInt(c[6]), Integer.parseInt(c[7]), c.length > 8
                                ? Integer.parseInt(c[8])
                                : 10);
            } catch (Exception e) {
                out = "rq_requests=0 rq_failed=-1 rq_error=" + e.toString().replace(' ', '_');
            }
            System.out.println(out);
            System.out.flush();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }

    /** One run's shared outcome: each request's latency (ns, -1 until answered) and the counts. */
    static final class Run {
        final long start;
        final long interval;
        final long[] latency;
        final AtomicInteger ok = new AtomicInteger();
        final AtomicInteger bad = new AtomicInteger();
        final CountDownLatch answered;
        volatile String error = "";
        volatile String firstBad = "";
        /** h2: requests that waited for a stream; HEADERS writes that failed, and the first one's cause. */
        final AtomicInteger waited = new AtomicInteger();
        final AtomicInteger refused = new AtomicInteger();
        volatile String refusedFirst = "";

        Run(int n, int rate) {
            start = System.nanoTime() + 200_000_000L; // the connections are open by then
            interval = 1_000_000_000L / rate;
            latency = new long[n];
            java.util.Arrays.fill(latency, -1);
            answered = new CountDownLatch(n);
        }

        long intended(int i) {
            return start + i * interval;
        }

        void answer(int i, int status, int bytes) {
            latency[i] = System.nanoTime() - intended(i);
            if (status == 200 && bytes == SIZE) {
                ok.incrementAndGet();
            } else if (bad.getAndIncrement() == 0) {
                firstBad = " bad_first=" + status + "/" + bytes;
            }
            answered.countDown();
        }
    }

    static String load(EventLoopGroup group, boolean h2, InetSocketAddress target, String authority, int rate,
            int seconds, int connections, int graceSeconds) throws Exception {
        int n = rate * seconds;
        Run run = new Run(n, rate);
        List<Conn> conns = new ArrayList<>();
        try {
            for (int c = 0; c < connections; c++) {
                conns.add(h2 ? new H2(group, target, authority, run) : new H1(group, target, authority, run));
            }
            for (int i = 0; i < n; i++) {
                EchoSinkLoad.waitUntil(run.intended(i));
                Conn conn = conns.get(i % connections);
                int req = i;
                conn.channel.eventLoop().execute(() -> conn.send(req));
            }
            run.answered.await(graceSeconds, TimeUnit.SECONDS);
        } finally {
            conns.forEach(c -> c.channel.close());
        }
        long[] done = java.util.Arrays.stream(run.latency).filter(l -> l >= 0).toArray();
        return String.format(Locale.ROOT, "ok=%d bad=%d waited=%d refused=%d ", run.ok.get(), run.bad.get(),
                run.waited.get(), run.refused.get())
                + NoisyLoad.render("rq", new EchoSinkLoad.Paced(done, n
                        - done.length, run.error))
                + run.firstBad + run.refusedFirst;
    }

    /** A connection of the run; {@link #send} runs on its event loop. */
    abstract static class Conn {
        final Run run;
        Channel channel;

        Conn(Run run) {
            this.run = run;
        }

        /** Connects to {@code target} with {@code handlers} in its pipeline. */
        Channel connect(EventLoopGroup group, InetSocketAddress target, Supplier<ChannelHandler[]> handlers)
                throws InterruptedException {
            var f = new Bootstrap().group(group).channel(NioSocketChannel.class).option(ChannelOption.TCP_NODELAY,
                    true).option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 10_000)
                    .handler(new ChannelInitializer<SocketChannel>() {
                        @Override
                        protected void initChannel(SocketChannel ch) {
                            ch.pipeline().addLast(handlers.get());
                        }
                    }).connect(target).sync();
            f.channel().closeFuture().addListener(x -> run.error = run.error.isEmpty() && x.cause() != null
                    ? x
                            .cause().toString()
                    : run.error);
            return f.channel();
        }

        abstract void send(int i);
    }

    /** HTTP/1.1: one request at a time; those due meanwhile wait their turn, their latency counting it. */
    static final class H1 extends Conn {
        private final ArrayDeque<Integer> due = new ArrayDeque<>();
        private final String authority;
        private int inFlight = -1;

        H1(EventLoopGroup group, InetSocketAddress target, String authority, Run run) throws InterruptedException {
            super(run);
            this.authority = authority;
            channel = connect(group, target, () -> new ChannelHandler[]{new HttpClientCodec(),
                    new HttpObjectAggregator(1 << 16), new SimpleChannelInboundHandler<FullHttpResponse>() {
                        @Override
                        protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse r) {
                            answered(r.status().code(), r.content().readableBytes());
                        }
                    }});
        }

        @Override
        void send(int i) {
            if (inFlight >= 0) {
                due.add(i);
                return;
            }
            inFlight = i;
            var req = new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/");
            req.headers().set(HttpHeaderNames.HOST, authority).setInt(HttpHeaderNames.CONTENT_LENGTH, 0);
            channel.writeAndFlush(req);
        }

        private void answered(int status, int bytes) {
            run.answer(inFlight, status, bytes);
            inFlight = -1;
            Integer next = due.poll();
            if (next != null) {
                send(next);
            }
        }
    }

    /**
     * h2c with prior knowledge: a new stream per request, sent at once while the server's
     * {@code SETTINGS_MAX_CONCURRENT_STREAMS} allows, else queued until one of this connection's streams ends
     * (counted in {@code waited}; the wait counts in the latency), as HTTP/1.1 queues behind its connection.
     * Opening one more would make Netty's codec refuse it locally ("Maximum active streams violated"), a
     * request that never leaves and is never answered: the 555 h2 failures of the 2026-12-07 run at 500/s,
     * where 4 connections held more than 4 x 100 requests while the waypoint's p99 was 1.6 s. A HEADERS
     * write that fails still counts in {@code refused}, its first cause in {@code refused_first}.
     */
    static final class H2 extends Conn {
        private final Http2StreamChannelBootstrap streams;
        private final Http2FrameCodec codec;
        private final String authority;
        private final ArrayDeque<Integer> due = new ArrayDeque<>();
        private int open;

        H2(EventLoopGroup group, InetSocketAddress target, String authority, Run run) throws InterruptedException {
            super(run);
            this.authority = authority;
            Http2FrameCodec frames = Http2FrameCodecBuilder.forClient().build();
            this.codec = frames;
            // The server opens no streams: the multiplexer's handler for them is a no-op.
            channel = connect(group, target, () -> new ChannelHandler[]{frames,
                    new Http2MultiplexHandler(new ChannelInboundHandlerAdapter())});
            streams = new Http2StreamChannelBootstrap(channel);
        }

        @Override
        void send(int i) {
            if (open >= codec.connection().local().maxActiveStreams()) {
                run.waited.incrementAndGet();
                due.add(i);
                return;
            }
            open++;
            streams.open().addListener(f -> {
                if (!f.isSuccess()) {
                    run.error = f.cause().toString();
                    ended();
                    return;
                }
                Http2StreamChannel s = (Http2StreamChannel) f.getNow();
                s.closeFuture().addListener(x -> ended());
                s.pipeline().addLast(new SimpleChannelInboundHandler<Http2StreamFrame>() {
                    int status;
                    int bytes;

                    @Override
                    protected void channelRead0(ChannelHandlerContext ctx, Http2StreamFrame frame) {
                        boolean end = false;
                        if (frame instanceof Http2HeadersFrame h) {
                            CharSequence st = h.headers().status();
                            status = st != null && status == 0 ? Integer.parseInt(st.toString()) : status;
                            end = h.isEndStream();
                        } else if (frame instanceof Http2DataFrame d) {
                            ByteBuf content = d.content();
                            bytes += content.readableBytes();
                            end = d.isEndStream();
                        }
                        if (end) {
                            run.answer(i, status, bytes);
                            ctx.close();
                        }
                    }
                });
                s.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().method("GET").scheme("http")
                        .path("/").authority(authority), true)).addListener(w -> {
                            if (!w.isSuccess() && run.refused.getAndIncrement() == 0) {
                                run.refusedFirst = " refused_first=" + w.cause().toString().replace(' ', '_');
                            }
                        });
            });
        }

        /** One of this connection's streams ended (on its event loop): the next queued request goes. */
        private void ended() {
            open--;
            Integer next = due.poll();
            if (next != null) {
                send(next);
            }
        }
    }
}
