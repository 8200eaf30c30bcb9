package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.identity.IdentityException;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.handler.codec.http2.DefaultHttp2PingFrame;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2PingFrame;
import io.netty.handler.codec.http2.Http2SettingsFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HBONE client: opens CONNECT streams over pooled mutual-TLS HTTP/2 connections. The decisions
 * (which connection, when to connect, who waits, what is idle) are {@link PoolCore}'s; this class
 * does the I/O around them.
 *
 * <p>A connection is handed to waiting requests only after the TLS handshake, the check that the
 * server's SVID is one of the key's accepted identities, and the server's first SETTINGS (whose
 * MAX_CONCURRENT_STREAMS bounds the streams we put on it). Each connection sends a PING after 10 s
 * without one and closes when an ack does not come within 20 s. A GOAWAY stops new streams on that
 * connection; a stream refused by a racing GOAWAY is retried once on another connection. An idle
 * sweep every 30 s closes connections without streams for the idle timeout (5 min); a timeout of
 * zero closes a connection as soon as its last stream ends.
 *
 * <p>A connection takes no new streams once the first of the two certificates it was verified with
 * expires (ours or the server's), as after a GOAWAY: its open streams finish and the next stream
 * gets a new handshake with the certificates and trust bundle of now. So renewal and root rotation
 * reach pooled connections, and none outlives a retired root by more than one certificate lifetime.
 * A handshake that fails (TLS, or a server identity not among the key's) is counted in
 * {@code wisp_hbone_pool_handshake_failures_total}.
 *
 * <p>Thread-safety: {@link PoolCore} is guarded by {@code this}; all other state is confined to
 * each connection's event loop.
 */
public final class HbonePool implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(HbonePool.class);
    private static final Duration PING_INTERVAL = Duration.ofSeconds(10);
    private static final Duration PING_TIMEOUT = Duration.ofSeconds(20);
    private final ProxyContext ctx;
    private final long pingIntervalMs;
    private final long pingTimeoutMs;
    private final long idleNanos;
    /** Guarded by {@code this}. */
    private final PoolCore<PoolKey, Channel, Request> core;
    private final AtomicLong opened = new AtomicLong();
    private final io.micrometer.core.instrument.Counter goAways;
    private final io.micrometer.core.instrument.Counter handshakeFailures;
    private final io.micrometer.core.instrument.Counter expired;
    private final IdleSweeper<Channel> sweeper;

    /** A caller waiting for a stream. */
    private record Request(PoolKey key, Promise<Http2StreamChannel> promise,
            ChannelInitializer<Http2StreamChannel> init,
            boolean retried) {}

    public HbonePool(ProxyContext ctx, int streamsPerConnection, Duration idleTimeout) {
        this(ctx, streamsPerConnection, idleTimeout, PING_INTERVAL, PING_TIMEOUT);
    }

    /** Tests only: shorter PING timers, so that a dead peer is detected in a test's time. */
    HbonePool(ProxyContext ctx, int streamsPerConnection, Duration idleTimeout, Duration pingInterval,
            Duration pingTimeout) {
        this.ctx = requireNonNull(ctx, "ctx");
        this.pingIntervalMs = pingInterval.toMillis();
        this.pingTimeoutMs = pingTimeout.toMillis();
        this.core = new PoolCore<>(streamsPerConnection);
        this.idleNanos = idleTimeout.toNanos();
        ctx.telemetry().gauge("wisp_hbone_pool_connections", "HBONE client TLS connections open", this::connections);
        ctx.telemetry().gauge("wisp_hbone_pool_connections_opened", "HBONE client TLS connections opened, ever",
                opened::get);
        this.goAways = ctx.telemetry().counter("wisp_hbone_pool_goaway_received",
                "GOAWAY frames received on HBONE client connections");
        this.handshakeFailures = ctx.telemetry().counter("wisp_hbone_pool_handshake_failures",
                "HBONE client TLS handshakes that failed or presented a server identity not expected");
        this.expired = ctx.telemetry().counter("wisp_hbone_pool_certificate_expiries",
                "HBONE client connections that stopped taking streams when a certificate they were verified with expired");
        this.sweeper = new IdleSweeper<>(this, core, idleTimeout, ctx.transport().workers, c -> {
            LOG.debug("HBONE connection to {} idle: released", c.remoteAddress());
            c.close();
        });
    }

    /** Open TLS connections over all keys. */
    public synchronized int connections() {
        return core.connections();
    }

    /** TLS connections opened since start. */
    public long connectionsOpened() {
        return opened.get();
    }

    /**
     * Opens a stream to {@code key}; the stream's pipeline is set up by {@code init} (which sends
     * the CONNECT request). The promise fails when no connection can be made.
     */
    public Future<Http2StreamChannel> open(PoolKey key, ChannelInitializer<Http2StreamChannel> init,
            Promise<Http2StreamChannel> promise) {
        requireNonNull(key, "key");
        acquire(new Request(key, promise, init, false));
        return promise;
    }

    private void acquire(Request r) {
        PoolCore.Decision<Channel> d;
        synchronized (this) {
            d = core.acquire(r.key(), r);
        }
        switch (d) {
            case PoolCore.Decision.Use<Channel> use -> openStream(use.connection(), r);
            case PoolCore.Decision.Connect<Channel> c -> connect(r.key());
            case PoolCore.Decision.Wait<Channel> w -> {}
        }
    }

    private void openStream(Channel conn, Request r) {
        conn.eventLoop().execute(() -> new Http2StreamChannelBootstrap(conn).handler(r.init()).open()
                .addListener((Future<Http2StreamChannel> f) -> {
                    if (f.isSuccess()) {
                        f.getNow().closeFuture().addListener(x -> release(r.key(), conn));
                        r.promise().trySuccess(f.getNow());
                        return;
                    }
                    release(r.key(), conn);
                    if (!r.retried()) {
                        // Typically a GOAWAY that raced with the reservation: try another connection.
                        synchronized (this) {
                            core.goAway(r.key(), conn);
                        }
                        acquire(new Request(r.key(), r.promise(), r.init(), true));
                    } else {
                        r.promise().tryFailure(f.cause());
                    }
                }));
    }

    private void release(PoolKey key, Channel conn) {
        List<Channel> idle = List.of();
        synchronized (this) {
            core.release(key, conn, System.nanoTime());
            if (idleNanos == 0) { // an idle timeout of zero: never reuse a connection whose streams all ended
                idle = core.idle(System.nanoTime(), 0);
            }
        }
        idle.forEach(Channel::close);
    }

    private void connect(PoolKey key) {
        opened.incrementAndGet();
        Bootstrap b = new Bootstrap().group(ctx.transport().workers).channel(ctx.transport().socketChannel)
                .option(ChannelOption.TCP_NODELAY, true).option(ChannelOption.WRITE_BUFFER_WATER_MARK, Hbone.WATER_MARK)
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) ctx.connectTimeout().toMillis())
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) throws IdentityException {
                        SslHandler ssl = ctx.tls().client(key.sourceIdentity(), key.destinationIdentities())
                                .newHandler(ch.alloc());
                        ssl.setHandshakeTimeoutMillis(ctx.connectTimeout().toMillis());
                        ch.pipeline().addLast("tls", ssl).addLast("setup", new Setup(key));
                    }
                });
        b.connect(key.destination()).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                failed(key, new HboneException(new Outcome.Unreachable("HBONE port " + key.destination()
                        + " unreachable: is the peer agent running and no NetworkPolicy blocking it? ("
                        + f.cause() + ")"), f.cause()));
            }
        });
    }

    private void failed(PoolKey key, Throwable cause) {
        List<Request> waiting;
        synchronized (this) {
            waiting = core.connectFailed(key);
        }
        LOG.warn("HBONE connection to {} failed: {}", key.destination(), cause.getMessage());
        for (Request r : waiting) {
            r.promise().tryFailure(cause);
        }
    }

    private void ready(PoolKey key, Channel conn, long maxStreams) {
        PoolCore.Ready<Request> ready;
        synchronized (this) {
            ready = core.connected(key, conn, maxStreams, System.nanoTime());
        }
        conn.closeFuture().addListener(f -> {
            synchronized (this) {
                core.closed(key, conn);
            }
        });
        for (Request r : ready.served()) {
            openStream(conn, r);
        }
        if (ready.connectAgain()) {
            connect(key);
        }
    }

    /** Closes every connection (GOAWAY, streams allowed to finish by the codec's graceful shutdown). */
    @Override
    public void close() {
        sweeper.close();
    }

    /** Sets up one connection: identity check after TLS, HTTP/2, then waits for SETTINGS. */
    private final class Setup extends ChannelInboundHandlerAdapter {
        private final PoolKey key;
        /** Connection's event loop only. */
        private boolean announced;
        private long pingSentAt;
        private ScheduledFuture<?> pinger;

        Setup(PoolKey key) {
            this.key = key;
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext c, Object evt) throws Exception {
            if (evt instanceof SslHandshakeCompletionEvent hs) {
                if (!hs.isSuccess()) {
                    handshakeFailures.increment();
                    fail(c, new Outcome.Unreachable("TLS handshake with " + key.destination() + " failed: "
                            + hs.cause().getMessage()));
                    return;
                }
                SslHandler ssl = c.pipeline().get(SslHandler.class);
                if (!ApplicationProtocolNames.HTTP_2.equals(ssl.applicationProtocol())) {
                    fail(c, new Outcome.Malformed("HBONE server " + key.destination() + " did not negotiate h2"));
                    return;
                }
                Optional<Outcome.PeerIdentity> wrong = PooledSession.wrongServer(key, ssl.engine().getSession(), "");
                if (wrong.isPresent()) {
                    handshakeFailures.increment();
                    fail(c, wrong.get());
                    return;
                }
                Http2FrameCodec codec = Http2FrameCodecBuilder.forClient().initialSettings(Hbone.clientSettings())
                        .gracefulShutdownTimeoutMillis(30_000).build();
                c.pipeline().addBefore(c.name(), "h2", codec).addBefore(c.name(), "streams",
                        new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()));
                Hbone.finish(codec);
                pinger = c.executor().scheduleAtFixedRate(() -> ping(c), pingIntervalMs, pingIntervalMs,
                        TimeUnit.MILLISECONDS);
                PooledSession.onCertificateExpiry(ssl.engine().getSession(), c.channel(), () -> certificateExpired(c));
                return;
            }
            c.fireUserEventTriggered(evt);
        }

        /** Handled as a GOAWAY from the server. */
        private void certificateExpired(ChannelHandlerContext c) {
            expired.increment();
            LOG.debug("HBONE connection to {}: a certificate it was verified with expired, no new streams on it",
                    key.destination());
            noNewStreams(c);
        }

        /** No new streams on this connection: closed now if idle, else by the sweep once its streams end. */
        private void noNewStreams(ChannelHandlerContext c) {
            boolean idle;
            synchronized (HbonePool.this) {
                idle = core.goAway(key, c.channel());
            }
            if (idle) {
                c.close();
            }
        }

        private void ping(ChannelHandlerContext c) {
            long now = System.nanoTime();
            if (pingSentAt != 0 && now - pingSentAt > TimeUnit.MILLISECONDS.toNanos(pingTimeoutMs)) {
                LOG.warn("HBONE connection to {}: no PING ack in {} ms, closing", key.destination(), pingTimeoutMs);
                // The peer is gone: do not wait for its streams to finish as a graceful close would.
                c.pipeline().get(Http2FrameCodec.class).gracefulShutdownTimeoutMillis(0);
                c.close();
                return;
            }
            if (pingSentAt == 0) {
                pingSentAt = now;
                c.writeAndFlush(new DefaultHttp2PingFrame(now));
            }
        }

        @Override
        public void channelRead(ChannelHandlerContext c, Object msg) {
            try {
                if (msg instanceof Http2SettingsFrame s) {
                    Long max = s.settings().maxConcurrentStreams();
                    long limit = max == null ? Long.MAX_VALUE : max;
                    if (!announced) {
                        announced = true;
                        ready(key, c.channel(), limit);
                    } else {
                        synchronized (HbonePool.this) {
                            core.limitChanged(key, c.channel(), limit);
                        }
                    }
                } else if (msg instanceof Http2GoAwayFrame g) {
                    LOG.debug("HBONE connection to {}: GOAWAY ({}), no new streams on it", key.destination(),
                            g.errorCode());
                    goAways.increment();
                    noNewStreams(c);
                } else if (msg instanceof Http2PingFrame p && p.ack()) {
                    pingSentAt = 0;
                }
            } finally {
                ReferenceCountUtil.release(msg);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext c) {
            if (pinger != null) {
                pinger.cancel(false);
            }
            if (!announced) {
                announced = true;
                failed(key, new HboneException(new Outcome.Unreachable("HBONE connection to " + key.destination()
                        + " closed during setup" + presented(c)), null));
            }
            c.fireChannelInactive();
        }

        /**
         * After our side of a TLS 1.3 handshake completed, the server still checks our certificate: a
         * close then usually means it refused it. Names the chain we presented (serials and issuers),
         * to compare with what the server's refusal says it got.
         */
        private static String presented(ChannelHandlerContext c) {
            SslHandler ssl = c.pipeline().get(SslHandler.class);
            if (ssl == null || !ssl.handshakeFuture().isSuccess()) {
                return "";
            }
            java.security.cert.Certificate[] local = ssl.engine().getSession().getLocalCertificates();
            if (local == null || local.length == 0) {
                return " after the TLS handshake, having presented no certificate";
            }
            return " after the TLS handshake (did the server refuse our certificate? we presented "
                    + java.util.Arrays.stream(local).map(x -> x instanceof java.security.cert.X509Certificate x509
                            ? x509.getSerialNumber().toString(16) + " issued by " + x509.getIssuerX500Principal()
                                    .getName()
                            : x.getType()).toList()
                    + ")";
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
            LOG.debug("HBONE connection to {} failed: {}", key.destination(), cause.toString());
            c.close();
        }

        private void fail(ChannelHandlerContext c, Outcome.Failed outcome) {
            announced = true;
            failed(key, new HboneException(outcome, null));
            c.close();
        }
    }
}
