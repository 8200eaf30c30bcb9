package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.identity.IdentityException;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http3.DefaultHttp3UnknownFrame;
import io.netty.handler.codec.http3.Http3;
import io.netty.handler.codec.http3.Http3ClientConnectionHandler;
import io.netty.handler.codec.http3.Http3GoAwayFrame;
import io.netty.handler.codec.quic.QuicChannel;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HBONE client over HTTP/3: CONNECT request streams on pooled QUIC connections, one connection
 * per {@link PoolKey} carrying many streams. The decisions are {@link PoolCore}'s, as for HTTP/2.
 *
 * <p>Each QUIC connection has a UDP socket of its own (bound to an ephemeral port), registered
 * with the next worker loop: connections spread over the loops as TCP connections do. A connection
 * is handed to waiting requests after the QUIC handshake (TLS 1.3 inside, ALPN {@code h3}, this
 * agent's SVID presented) and the check that the server's SVID is one of the key's accepted
 * identities. A handshake that does not complete within the handshake timeout fails the waiting
 * requests with {@link Outcome.Unreachable}: the HBONE client falls back to HTTP/2 on that
 * ({@link HboneClient}). Each connection sends a keepalive every {@link #KEEPALIVE} (a reserved
 * HTTP/3 frame type on its control stream, RFC 9114 §7.2.8: ack-eliciting, ignored by the peer), so
 * QUIC's idle timeout ({@link #QUIC_IDLE}, both ends) never cuts a quiet tunnel while the peer
 * answers, and a peer that stopped answering (its node gone, the path cut) is detected within it:
 * the connection closes, and its streams with it. Connections without streams for the pool's idle
 * timeout are closed by a sweep, as HTTP/2's are; closing a connection closes its socket. A GOAWAY from the server (it is draining) takes the
 * connection out of the pool: its open streams go on, new ones go to another connection; the server
 * closes it when they have ended. So does the expiry of the first of the two certificates the
 * connection was verified with (as in {@link HbonePool}), so that renewal and root rotation reach
 * pooled QUIC connections too ({@code wisp_hbone_quic_pool_certificate_expiries_total}).
 *
 * <p>Thread-safety: {@link PoolCore} is guarded by {@code this}; all other state is confined to
 * each connection's event loop.
 */
public final class QuicHbonePool implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(QuicHbonePool.class);
    /**
     * QUIC's idle timeout (max_idle_timeout, both ends; the smaller applies): how long a connection
     * lives without a packet from the peer. 30 s: three keepalive intervals, so two lost keepalives
     * (or their ACKs) do not cut a healthy connection, and as short as HTTP/2's PING timeout plus
     * its interval, so a dead peer is noticed as fast over either framing.
     */
    static final Duration QUIC_IDLE = Duration.ofSeconds(30);
    /** How often a connection sends a keepalive: HTTP/2's PING interval. */
    static final Duration KEEPALIVE = Duration.ofSeconds(10);
    /** A reserved HTTP/3 frame type (0x1f * N + 0x21, N = 1): receivers must ignore it. */
    static final long KEEPALIVE_FRAME_TYPE = 0x1f + 0x21;
    private final ProxyContext ctx;
    private final Duration quicIdle;
    private final long keepaliveMs;
    private final IdleSweeper<QuicChannel> sweeper;
    /** Read at each connection: how long its handshake may take (the HBONE client's mode decides it). */
    private final Supplier<Duration> handshakeTimeout;
    /** Guarded by {@code this}. */
    private final PoolCore<PoolKey, QuicChannel, Request> core;
    private final AtomicLong opened = new AtomicLong();
    private final AtomicLong timeouts = new AtomicLong();
    private final io.micrometer.core.instrument.Counter goAways;
    private final io.micrometer.core.instrument.Counter expired;

    private record Request(PoolKey key, ChannelHandler handler, Promise<QuicStreamChannel> promise) {}

    /**
     * @param handshakeTimeout read at each new connection
     * @param idleTimeout how long a connection without streams stays in the pool (the HTTP/2 pool's)
     */
    public QuicHbonePool(ProxyContext ctx, int streamsPerConnection, Supplier<Duration> handshakeTimeout,
            Duration idleTimeout) {
        this(ctx, streamsPerConnection, handshakeTimeout, idleTimeout, QUIC_IDLE, KEEPALIVE);
    }

    /** Tests only: a shorter QUIC idle timeout and keepalive interval. */
    QuicHbonePool(ProxyContext ctx, int streamsPerConnection, Supplier<Duration> handshakeTimeout,
            Duration idleTimeout, Duration quicIdle, Duration keepalive) {
        this.ctx = requireNonNull(ctx, "ctx");
        requireNonNull(idleTimeout, "idleTimeout");
        this.quicIdle = requireNonNull(quicIdle, "quicIdle");
        this.keepaliveMs = requireNonNull(keepalive, "keepalive").toMillis();
        this.handshakeTimeout = requireNonNull(handshakeTimeout, "handshakeTimeout");
        this.core = new PoolCore<>(streamsPerConnection);
        ctx.telemetry().gauge("wisp_hbone_quic_pool_connections", "HBONE client QUIC connections (HTTP/3) open",
                this::connections);
        ctx.telemetry().gauge("wisp_hbone_quic_pool_connections_opened",
                "HBONE client QUIC connections (HTTP/3) opened, ever", opened::get);
        ctx.telemetry().gauge("wisp_hbone_quic_pool_handshake_timeouts",
                "HBONE client QUIC handshakes (HTTP/3) that did not complete in time, ever", timeouts::get);
        this.goAways = ctx.telemetry().counter("wisp_hbone_quic_pool_goaway_received",
                "HTTP/3 GOAWAY frames received on HBONE client QUIC connections");
        this.expired = ctx.telemetry().counter("wisp_hbone_quic_pool_certificate_expiries",
                "HBONE client QUIC connections that stopped taking streams when a certificate they were verified with "
                        + "expired");
        this.sweeper = new IdleSweeper<>(this, core, idleTimeout, ctx.transport().workers, QuicChannel::close);
    }

    /** Open QUIC connections over all keys. */
    public synchronized int connections() {
        return core.connections();
    }

    /**
     * Opens an HTTP/3 request stream to {@code key}, half-closure on, with {@code handler} behind the
     * HTTP/3 codec (it sends the CONNECT request). The promise fails when no connection can be made.
     */
    public Future<QuicStreamChannel> open(PoolKey key, ChannelHandler handler, Promise<QuicStreamChannel> promise) {
        Request r = new Request(requireNonNull(key, "key"), handler, promise);
        PoolCore.Decision<QuicChannel> d;
        synchronized (this) {
            d = core.acquire(key, r);
        }
        switch (d) {
            case PoolCore.Decision.Use<QuicChannel> use -> openStream(use.connection(), r);
            case PoolCore.Decision.Connect<QuicChannel> c -> connect(key);
            case PoolCore.Decision.Wait<QuicChannel> w -> {}
        }
        return promise;
    }

    private void openStream(QuicChannel quic, Request r) {
        if (!quic.eventLoop().inEventLoop()) {
            quic.eventLoop().execute(() -> openStream(quic, r));
            return;
        }
        if (quic.pipeline().get(Http3ClientConnectionHandler.class).isGoAwayReceived()) {
            // Reserved before the GOAWAY was read: the codec would refuse the request; take another connection.
            release(r.key(), quic);
            goneAway(r.key(), quic);
            open(r.key(), r.handler(), r.promise());
            return;
        }
        Http3.newRequestStreamBootstrap(quic, r.handler()).option(ChannelOption.ALLOW_HALF_CLOSURE, true).create()
                .addListener((Future<QuicStreamChannel> f) -> {
                    if (!f.isSuccess()) {
                        release(r.key(), quic);
                        r.promise().tryFailure(new HboneException(new Outcome.Unreachable("HTTP/3 stream to "
                                + r.key().destination() + " could not be opened: " + f.cause()), f.cause()));
                        return;
                    }
                    f.getNow().closeFuture().addListener(x -> release(r.key(), quic));
                    r.promise().trySuccess(f.getNow());
                });
    }

    private synchronized void release(PoolKey key, QuicChannel quic) {
        core.release(key, quic, System.nanoTime());
    }

    private synchronized void goneAway(PoolKey key, QuicChannel quic) {
        core.goAway(key, quic);
    }

    private void connect(PoolKey key) {
        opened.incrementAndGet();
        ChannelHandler codec;
        try {
            codec = QuicHboneServer.quicTransportParameters(Http3.newQuicClientCodecBuilder())
                    .maxIdleTimeout(quicIdle.toMillis(), TimeUnit.MILLISECONDS)
                    .sslContext(ctx.tls().quicClient(key.sourceIdentity(), key.destinationIdentities())).build();
        } catch (IdentityException e) {
            failed(key, new Outcome.NoSourceIdentity(e.getMessage()));
            return;
        }
        new Bootstrap().group(ctx.transport().workers).channel(ctx.transport().datagramChannel).handler(codec)
                .bind(new InetSocketAddress(0)).addListener((ChannelFutureListener) bound -> {
                    if (!bound.isSuccess()) {
                        failed(key, new Outcome.Unreachable("no UDP socket for QUIC: " + bound.cause()));
                        return;
                    }
                    handshake(key, bound.channel());
                });
    }

    private void handshake(PoolKey key, Channel udp) {
        Duration handshakeTimeout = this.handshakeTimeout.get();
        Future<QuicChannel> hs = QuicChannel.newBootstrap(udp).handler(new Http3ClientConnectionHandler(
                goAways(key), null, null, null, true))
                .remoteAddress(key.destination()).connect();
        // Timer and listener run on the socket's loop. The timeout closes the socket, which fails the
        // handshake with QuicClosedChannelException: expected, so not logged. (Cancelling the future
        // instead made Netty's bootstrap fail it again, logged as a warning with a stack trace.)
        AtomicBoolean timedOut = new AtomicBoolean();
        var timer = udp.eventLoop().schedule(() -> {
            if (!hs.isDone()) {
                timedOut.set(true);
                udp.close();
                long n = timeouts.incrementAndGet();
                LOG.info("HBONE over HTTP/3 to {}: no QUIC handshake within {} ms (UDP blocked or no HTTP/3 "
                        + "listener?); {} handshake timeout(s) so far", key.destination(),
                        handshakeTimeout
                                .toMillis(),
                        n);
                failed(key, new Outcome.Unreachable("HBONE over HTTP/3 to " + key.destination() + ": no QUIC "
                        + "handshake within " + handshakeTimeout.toMillis() + " ms (UDP blocked or no HTTP/3 "
                        + "listener?)"));
            }
        }, handshakeTimeout.toMillis(), TimeUnit.MILLISECONDS);
        hs.addListener((Future<QuicChannel> f) -> {
            timer.cancel(false);
            if (timedOut.get()) {
                if (f.isSuccess()) {
                    f.getNow().close();
                }
                return;
            }
            if (!f.isSuccess()) {
                udp.close();
                failed(key, new Outcome.Unreachable("HBONE over HTTP/3 to " + key.destination() + ": no QUIC "
                        + "handshake: " + f.cause().getMessage()));
                return;
            }
            QuicChannel quic = f.getNow();
            ScheduledFuture<?> keepalive = quic.eventLoop().scheduleAtFixedRate(() -> keepAlive(quic), keepaliveMs,
                    keepaliveMs, TimeUnit.MILLISECONDS);
            quic.closeFuture().addListener(x -> {
                keepalive.cancel(false);
                udp.close();
                synchronized (this) {
                    core.closed(key, quic);
                }
            });
            Optional<Outcome.PeerIdentity> wrong = PooledSession.wrongServer(key, quic.sslEngine().getSession(),
                    " over QUIC");
            if (wrong.isPresent()) {
                quic.close();
                failed(key, wrong.get());
                return;
            }
            PoolCore.Ready<Request> ready;
            synchronized (this) {
                ready = core.connected(key, quic, Hbone.SERVER_MAX_STREAMS, System.nanoTime());
            }
            PooledSession.onCertificateExpiry(quic.sslEngine().getSession(), quic, () -> certificateExpired(key, quic));
            for (Request r : ready.served()) {
                openStream(quic, r);
            }
            if (ready.connectAgain()) {
                connect(key);
            }
        });
    }

    /** As a GOAWAY from the server: no new streams; closed now when idle, else by the sweep once its streams end. */
    private void certificateExpired(PoolKey key, QuicChannel quic) {
        expired.increment();
        LOG.debug("HBONE over HTTP/3 to {}: a certificate the connection was verified with expired, no new streams "
                + "on it", key.destination());
        boolean idle;
        synchronized (this) {
            idle = core.goAway(key, quic);
        }
        if (idle) {
            quic.close();
        }
    }

    private void failed(PoolKey key, Outcome.Failed outcome) {
        List<Request> waiting;
        synchronized (this) {
            waiting = core.connectFailed(key);
        }
        for (Request r : waiting) {
            r.promise().tryFailure(new HboneException(outcome, null));
        }
    }

    /** One keepalive on {@code quic}'s control stream; on its event loop. */
    private static void keepAlive(QuicChannel quic) {
        QuicStreamChannel control = Http3.getLocalControlStream(quic);
        if (control != null && control.isActive()) {
            control.writeAndFlush(new DefaultHttp3UnknownFrame(KEEPALIVE_FRAME_TYPE, Unpooled.EMPTY_BUFFER));
        }
    }

    /** Closes every idle connection now; busy ones close with their last stream or QUIC's idle timeout. */
    @Override
    public void close() {
        sweeper.close();
    }

    /** Reads the server's control stream frames of one connection: a GOAWAY takes it out of the pool. */
    private ChannelHandler goAways(PoolKey key) {
        return new ChannelInboundHandlerAdapter() {
            @Override
            public void channelRead(ChannelHandlerContext c, Object msg) {
                if (msg instanceof Http3GoAwayFrame) {
                    goAways.increment();
                    goneAway(key, (QuicChannel) c.channel().parent());
                }
                ReferenceCountUtil.release(msg);
            }
        };
    }
}
