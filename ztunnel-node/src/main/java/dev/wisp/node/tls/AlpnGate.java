package dev.wisp.node.tls;

import static java.util.Objects.requireNonNull;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslClientHelloHandler;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.util.function.BiConsumer;

/**
 * Sits in front of the server's {@code SslHandler} and reads the client's ClientHello before
 * BoringSSL does. BoringSSL, through Netty, can only leave ALPN out of its answer when nothing
 * matches (see {@code SpiffeTls}); this handler sends what RFC 7301 §3.2 asks for instead: a client
 * whose ALPN list lacks the required protocol (or that sends no ALPN at all: HBONE is HTTP/2 only)
 * gets a fatal {@code no_application_protocol} alert in a plaintext record and the connection is
 * closed, before any certificate is exchanged and before any HTTP/2 byte.
 *
 * <p>Otherwise it stores what it read ({@link #HELLO}, for naming a later handshake failure) and
 * removes itself, handing the buffered bytes to the {@code SslHandler}: the provider's fast path is
 * unchanged after the first flight. A ClientHello that does not parse, or a first record that is
 * not one, is left to the provider to refuse.
 *
 * <p>Reference counting: Netty's {@link SslClientHelloHandler} owns the buffered bytes and releases
 * them on removal; {@link ClientHello#parse} only reads. Event loop only; one instance per channel.
 */
public final class AlpnGate extends SslClientHelloHandler<ClientHello> {
    /** What the client offered; absent when its first bytes were not a ClientHello that parses. */
    public static final AttributeKey<ClientHello> HELLO = AttributeKey.valueOf("wisp.tls.clientHello");
    /** TLS record: alert (21), legacy version TLS 1.2, length 2; fatal (2), no_application_protocol (120). */
    private static final byte[] NO_APPLICATION_PROTOCOL = {21, 3, 3, 0, 2, 2, 120};

    private final String required;
    private final BiConsumer<Channel, ClientHello> refused;

    /**
     * @param required the protocol the client must offer ({@code h2})
     * @param refused called once, on the event loop, for a client refused here (before the close)
     */
    public AlpnGate(String required, BiConsumer<Channel, ClientHello> refused) {
        this.required = requireNonNull(required, "required");
        this.refused = requireNonNull(refused, "refused");
    }

    /** Releases what a refused client still sends until the connection is closed. */
    private static final class Discard extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ReferenceCountUtil.release(msg);
        }
    }

    @Override
    protected Future<ClientHello> lookup(ChannelHandlerContext ctx, ByteBuf clientHello) {
        if (clientHello == null) {
            return ctx.executor().newSucceededFuture(null);
        }
        try {
            return ctx.executor().newSucceededFuture(ClientHello.parse(clientHello));
        } catch (ClientHello.MalformedException e) {
            return ctx.executor().newSucceededFuture(null);
        }
    }

    @Override
    protected void onLookupComplete(ChannelHandlerContext ctx, Future<ClientHello> future) {
        ClientHello hello = future.getNow();
        if (hello != null && !hello.offers(required)) {
            refused.accept(ctx.channel(), hello);
            ctx.writeAndFlush(Unpooled.wrappedBuffer(NO_APPLICATION_PROTOCOL)).addListener(ChannelFutureListener.CLOSE);
            // Whatever else the client sent (buffered here, or arriving before the close) goes nowhere.
            ctx.pipeline().replace(this, "alpn-refused", new Discard());
            return;
        }
        if (hello != null) {
            ctx.channel().attr(HELLO).set(hello);
        }
        ctx.pipeline().remove(this);
    }
}
