package dev.wisp.spiffe.tls;

import static java.util.Objects.requireNonNull;

import io.grpc.Attributes;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InternalChannelz;
import io.grpc.SecurityLevel;
import io.grpc.ServerCredentials;
import io.grpc.Status;
import io.grpc.internal.GrpcAttributes;
import io.grpc.internal.ObjectPool;
import io.grpc.netty.GrpcHttp2ConnectionHandler;
import io.grpc.netty.InternalNettyChannelCredentials;
import io.grpc.netty.InternalNettyServerCredentials;
import io.grpc.netty.InternalProtocolNegotiationEvent;
import io.grpc.netty.InternalProtocolNegotiator;
import io.grpc.netty.InternalProtocolNegotiators;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeCompletionEvent;
import io.netty.util.AsciiString;
import java.net.SocketAddress;
import java.nio.channels.ClosedChannelException;
import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.function.BiConsumer;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSession;

/**
 * gRPC over TLS with a handshake timeout of our choosing and a listener for handshakes that fail:
 * what gRPC's own TLS negotiation ({@code NettyServerBuilder.sslContext}, {@code
 * NettyChannelBuilder.sslContext}) does not offer. Its {@link SslHandler} keeps Netty's default of 10
 * s, measured from the first byte, which includes the time a handshake waits for CPU; and a failed
 * handshake is logged only at FINE through java.util.logging, which Wisp does not route.
 *
 * <p>Why the timeout matters (issue 12): with many agents connecting at once to a control plane on a
 * loaded machine (each first sync megabytes to encrypt on the same event loops, other processes on the
 * cores), a handshake took longer than 10 s; the agent's side gave up ({@code SslHandshakeTimeoutException:
 * handshake timed out after 10000ms}), or the control plane's closed it ("Connection closed while
 * performing TLS negotiation" at the agent), the work done was lost, and each agent retried into the same
 * queue. The timeout here is for a peer that says nothing, not for a slow machine.
 *
 * <p>The negotiation is gRPC's, step for step: the {@link SslHandler} is added when the connection is
 * active; on success the negotiated protocol must be {@code h2} (ALPN), the transport is marked
 * {@link SecurityLevel#PRIVACY_AND_INTEGRITY} with its {@link SSLSession} (what {@code
 * BearerCredentials} and {@code Grpc.TRANSPORT_ATTR_SSL_SESSION} readers rely on) and gRPC's HTTP/2
 * handler takes over; on failure the cause goes to gRPC, which closes the connection.
 *
 * <p>Threads: each handler lives on its connection's event loop; {@code onFailure} is called there.
 */
public final class GrpcTls {
    /** How long a TLS handshake may take on the control plane's port: a silent peer, not a slow machine. */
    public static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(60);
    private static final AsciiString HTTPS = AsciiString.of("https");

    private GrpcTls() {}

    /**
     * Server credentials for {@code tls} whose handshakes may take {@code timeout}; {@code onFailure}
     * gets each handshake's failure (timeout, closed by the peer, TLS error) with the peer's address.
     * The TLS work runs on gRPC's offload executor, as with gRPC's own negotiation.
     */
    public static ServerCredentials server(SslContext tls, Duration timeout,
            BiConsumer<Throwable, SocketAddress> onFailure) {
        requireNonNull(tls, "tls");
        requireNonNull(onFailure, "onFailure");
        long millis = positiveMillis(timeout);
        if (!tls.isServer()) {
            throw new IllegalArgumentException("a server needs a server TLS context");
        }
        return InternalNettyServerCredentials.create(new InternalProtocolNegotiator.ServerFactory() {
            @Override
            public InternalProtocolNegotiator.ProtocolNegotiator newNegotiator(
                    ObjectPool<? extends Executor> offload) {
                Executor executor = offload == null ? null : offload.getObject();
                return new Negotiator() {
                    @Override
                    public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpc) {
                        return negotiation(grpc, new Tls(tls, null, 0, executor, millis, onFailure, grpc));
                    }

                    @Override
                    public void close() {
                        if (executor != null) {
                            offload.returnObject(executor);
                        }
                    }
                };
            }
        });
    }

    /**
     * Channel credentials for {@code tls} whose handshakes may take {@code timeout} (the SNI and session
     * key are the channel's authority).
     */
    public static ChannelCredentials client(SslContext tls, Duration timeout) {
        requireNonNull(tls, "tls");
        long millis = positiveMillis(timeout);
        if (tls.isServer()) {
            throw new IllegalArgumentException("a client needs a client TLS context");
        }
        return InternalNettyChannelCredentials.create(new InternalProtocolNegotiator.ClientFactory() {
            @Override
            public InternalProtocolNegotiator.ProtocolNegotiator newNegotiator() {
                return new Negotiator() {
                    @Override
                    public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpc) {
                        String authority = grpc.getAuthority();
                        int colon = authority == null ? -1 : authority.lastIndexOf(':');
                        String host = colon < 0 ? authority : authority.substring(0, colon);
                        int port = colon < 0 ? 443 : Integer.parseInt(authority.substring(colon + 1));
                        if (host != null && host.startsWith("[") && host.endsWith("]")) {
                            host = host.substring(1, host.length() - 1);
                        }
                        return negotiation(grpc, new Tls(tls, host, port, null, millis, (t, a) -> {}, grpc));
                    }

                    @Override
                    public void close() {}
                };
            }

            @Override
            public int getDefaultPort() {
                return 443;
            }
        });
    }

    private static long positiveMillis(Duration timeout) {
        if (requireNonNull(timeout, "timeout").isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive: " + timeout);
        }
        return timeout.toMillis();
    }

    /** As gRPC's: TLS starts once the connection is active (gRPC buffers writes until then). */
    private static ChannelHandler negotiation(GrpcHttp2ConnectionHandler grpc, Tls tls) {
        return InternalProtocolNegotiators.waitUntilActiveHandler(tls, grpc.getNegotiationLogger());
    }

    private abstract static class Negotiator implements InternalProtocolNegotiator.ProtocolNegotiator {
        @Override
        public AsciiString scheme() {
            return HTTPS;
        }
    }

    /**
     * Adds the {@link SslHandler} (with the timeout) before itself; on its completion hands the
     * connection to gRPC's HTTP/2 handler, or the failure to gRPC. Owns no buffer: the bytes are the
     * {@link SslHandler}'s.
     */
    private static final class Tls extends InternalProtocolNegotiators.ProtocolNegotiationHandler {
        private final SslContext context;
        private final String host;
        private final int port;
        private final Executor executor;
        private final long timeoutMillis;
        private final BiConsumer<Throwable, SocketAddress> onFailure;

        Tls(SslContext context, String host, int port, Executor executor, long timeoutMillis,
                BiConsumer<Throwable, SocketAddress> onFailure, GrpcHttp2ConnectionHandler grpc) {
            super(InternalProtocolNegotiators.grpcNegotiationHandler(grpc), grpc.getNegotiationLogger());
            this.context = context;
            this.host = host;
            this.port = port;
            this.executor = executor;
            this.timeoutMillis = timeoutMillis;
            this.onFailure = onFailure;
        }

        @Override
        protected void handlerAdded0(ChannelHandlerContext ctx) {
            SSLEngine engine = host == null
                    ? context.newEngine(ctx.alloc())
                    : context.newEngine(ctx.alloc(), host, port);
            SslHandler ssl = executor == null ? new SslHandler(engine, false) : new SslHandler(engine, false, executor);
            // Before the handler is added: the handshake and its timer start then.
            ssl.setHandshakeTimeoutMillis(timeoutMillis);
            SocketAddress peer = ctx.channel().remoteAddress();
            ssl.handshakeFuture().addListener(f -> {
                if (!f.isSuccess()) {
                    onFailure.accept(f.cause(), peer);
                }
            });
            ctx.pipeline().addBefore(ctx.name(), null, ssl);
        }

        @Override
        protected void userEventTriggered0(ChannelHandlerContext ctx, Object evt) throws Exception {
            if (!(evt instanceof SslHandshakeCompletionEvent done)) {
                super.userEventTriggered0(ctx, evt);
                return;
            }
            if (!done.isSuccess()) {
                Throwable t = done.cause();
                ctx.fireExceptionCaught(t instanceof ClosedChannelException
                        ? Status.UNAVAILABLE.withDescription("Connection closed while performing TLS negotiation")
                                .withCause(t).asRuntimeException()
                        : t);
                return;
            }
            SslHandler ssl = ctx.pipeline().get(SslHandler.class);
            if (!context.applicationProtocolNegotiator().protocols().contains(ssl.applicationProtocol())) {
                ctx.fireExceptionCaught(Status.UNAVAILABLE.withDescription(
                        "TLS negotiated no h2 (ALPN): the peer is not a gRPC endpoint").asRuntimeException());
                return;
            }
            SSLSession session = ssl.engine().getSession();
            Attributes attributes = InternalProtocolNegotiationEvent.getAttributes(getProtocolNegotiationEvent())
                    .toBuilder()
                    .set(GrpcAttributes.ATTR_SECURITY_LEVEL, SecurityLevel.PRIVACY_AND_INTEGRITY)
                    .set(Grpc.TRANSPORT_ATTR_SSL_SESSION, session)
                    .build();
            replaceProtocolNegotiationEvent(InternalProtocolNegotiationEvent.withSecurity(
                    InternalProtocolNegotiationEvent.withAttributes(getProtocolNegotiationEvent(), attributes),
                    new InternalChannelz.Security(new InternalChannelz.Tls(session))));
            fireProtocolNegotiationEvent(ctx);
        }
    }
}
