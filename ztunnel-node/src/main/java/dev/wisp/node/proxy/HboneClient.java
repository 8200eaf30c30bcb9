package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.HboneProtocol;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.quic.QuicStreamChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.ImmediateEventExecutor;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which HBONE framing carries an outbound stream: HTTP/2 over TLS ({@link HbonePool}), HTTP/3 over
 * QUIC ({@link QuicHbonePool}) or, in {@link Mode#AUTO}, HTTP/3 with a fall back to HTTP/2 when the
 * peer does not complete a QUIC handshake within {@link #AUTO_HANDSHAKE_TIMEOUT} (UDP blocked, an
 * agent without HTTP/3). A destination that fell back is dialled over HTTP/2 for
 * {@link #FALLBACK_MEMORY} before QUIC is tried again, so that each new connection does not wait
 * for the timeout again.
 *
 * <p>The mode is the agent's {@code --hbone} flag when one was given ({@code pinned}), else what the
 * control plane sets on this node's Node resource (MeshConfig {@code spec.hbone.protocol},
 * {@link #meshProtocol}), else {@link Mode#H2}. A change applies to streams opened after it; open
 * streams and pooled connections of the other framing stay until they end or idle out.
 *
 * <p>Thread-safe. Owns the HTTP/3 pool ({@link #close} closes it); the HTTP/2 pool is its creator's.
 */
public final class HboneClient implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(HboneClient.class);
    /** How long {@link Mode#AUTO} waits for a QUIC handshake before using HTTP/2. */
    public static final Duration AUTO_HANDSHAKE_TIMEOUT = Duration.ofMillis(1500);
    static final Duration FALLBACK_MEMORY = Duration.ofMinutes(5);
    private final Optional<Mode> pinned;
    /** MeshConfig's choice, from this node's Node resource; written by the state's listener. */
    private volatile Mode meshMode = Mode.H2;
    private final HbonePool h2;
    private final Optional<QuicHbonePool> h3;
    /** HBONE address → until when (System.nanoTime) it is dialled over HTTP/2 only. */
    private final Map<InetSocketAddress, Long> h2Until = new ConcurrentHashMap<>();

    /** The HBONE framing an agent dials with: {@code wisp node --hbone h2|h3|auto}. */
    public enum Mode {
        /** HTTP/2 CONNECT over TLS over TCP: every agent serves it. The default. */
        H2,
        /** HTTP/3 CONNECT over QUIC (UDP) only: a peer without it is unreachable. */
        H3,
        /** HTTP/3 when the peer answers on QUIC in time, else HTTP/2. */
        AUTO;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }

        /** The mode named {@code label} ({@code h2}, {@code h3}, {@code auto}). */
        public static Mode parse(String label) {
            requireNonNull(label, "label");
            return java.util.Arrays.stream(values()).filter(m -> m.label().equals(label)).findFirst().orElseThrow(
                    () -> new IllegalArgumentException("unknown HBONE protocol '" + label + "': h2, h3 or auto"));
        }

        /** The mode a Node resource's {@code hbone_protocol} names; not set is {@link #H2}. */
        public static Mode of(HboneProtocol p) {
            return switch (requireNonNull(p, "p")) {
                case HBONE_H3 -> H3;
                case HBONE_AUTO -> AUTO;
                case HBONE_H2, HBONE_PROTOCOL_UNSET, UNRECOGNIZED -> H2;
            };
        }
    }

    /** HTTP/2 only, whatever the mesh says. */
    public HboneClient(HbonePool h2) {
        this.pinned = Optional.of(Mode.H2);
        this.h2 = requireNonNull(h2, "h2");
        this.h3 = Optional.empty();
    }

    /**
     * A client dialling over {@code pinned} when present (the {@code --hbone} flag), else over what
     * {@link #meshProtocol} last said; the HTTP/3 pool is made here unless pinned to {@link Mode#H2}.
     */
    public HboneClient(ProxyContext ctx, Optional<Mode> pinned, HbonePool h2, int streamsPerConnection,
            Duration idleTimeout) {
        this.pinned = requireNonNull(pinned, "pinned");
        this.h2 = requireNonNull(h2, "h2");
        this.h3 = pinned.equals(Optional.of(Mode.H2))
                ? Optional.empty()
                : Optional.of(new QuicHbonePool(ctx, streamsPerConnection,
                        () -> mode() == Mode.AUTO ? AUTO_HANDSHAKE_TIMEOUT : ctx.connectTimeout(), idleTimeout));
    }

    /** The framing new streams are opened with now. */
    public Mode mode() {
        return pinned.orElse(meshMode);
    }

    /**
     * MeshConfig's {@code spec.hbone.protocol} as this node's Node resource carries it now (not set
     * when the node has none): new streams use it unless the {@code --hbone} flag was given.
     */
    public void meshProtocol(HboneProtocol p) {
        Mode m = Mode.of(p);
        Mode before = meshMode;
        meshMode = m;
        if (m != before) {
            if (pinned.isPresent()) {
                LOG.info("MeshConfig's HBONE protocol is now {}; this agent keeps dialling over {} (--hbone wins)",
                        m.label(), pinned.get().label());
            } else {
                LOG.info("HBONE: new connections to other agents go over {} (MeshConfig spec.hbone.protocol)",
                        m.label());
            }
        }
    }

    /**
     * Opens a CONNECT stream to {@code key}; {@code request} makes the handler that sends the CONNECT
     * request and reads the answer, for the framing chosen. The promise fails when neither framing
     * allowed by the mode reaches the peer.
     */
    public void open(PoolKey key, Function<StreamProtocol, ChannelHandler> request, Promise<Channel> promise) {
        Mode mode = mode();
        boolean quic = h3.isPresent() && mode != Mode.H2 && (mode == Mode.H3
                || !h2Until.containsKey(key.destination()) || h2Until.get(key.destination()) - System.nanoTime() < 0);
        if (!quic) {
            overHttp2(key, request, promise);
            return;
        }
        h3.get().open(key, request.apply(StreamProtocol.H3), ImmediateEventExecutor.INSTANCE.newPromise())
                .addListener((Future<QuicStreamChannel> f) -> {
                    if (f.isSuccess()) {
                        promise.trySuccess(f.getNow());
                    } else if (mode == Mode.AUTO && f.cause() instanceof HboneException e
                            && e.outcome() instanceof Outcome.Unreachable) {
                        LOG.info("HBONE to {}: HTTP/3 unavailable ({}); using HTTP/2 for {}", key.destination(),
                                e.getMessage(), FALLBACK_MEMORY);
                        h2Until.put(key.destination(), System.nanoTime() + FALLBACK_MEMORY.toNanos());
                        overHttp2(key, request, promise);
                    } else {
                        promise.tryFailure(f.cause());
                    }
                });
    }

    private void overHttp2(PoolKey key, Function<StreamProtocol, ChannelHandler> request, Promise<Channel> promise) {
        ChannelHandler handler = request.apply(StreamProtocol.H2);
        h2.open(key, new ChannelInitializer<Http2StreamChannel>() {
            @Override
            protected void initChannel(Http2StreamChannel stream) {
                stream.pipeline().addLast("connect", handler);
            }
        }, ImmediateEventExecutor.INSTANCE.newPromise()).addListener((Future<Http2StreamChannel> f) -> {
            if (f.isSuccess()) {
                promise.trySuccess(f.getNow());
            } else {
                promise.tryFailure(f.cause());
            }
        });
    }

    @Override
    public void close() {
        h3.ifPresent(QuicHbonePool::close);
    }
}
