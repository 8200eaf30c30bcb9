package dev.wisp.node.proxy;

import dev.wisp.node.state.Snapshot;
import dev.wisp.node.telemetry.ConnectionLabels;
import dev.wisp.node.telemetry.Telemetry;
import dev.wisp.spiffe.SpiffeId;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One HBONE CONNECT stream on the server: validates the request, decides its source address
 * ({@link SourceAddress}: a {@code forwarded} claim counts only when the peer's certificate backs
 * it), authorizes it ({@link InboundDecision}), connects to the destination workload and answers 200
 * only once that TCP connection exists (otherwise the refusal's {@link Outcome#hboneStatus}, with
 * END_STREAM), then hands both channels to a {@link Relay} and leaves the pipeline.
 *
 * <p>Frames that arrive before the relay starts (a client may send DATA right after HEADERS) are
 * held in order and replayed into the relay; they are bounded by the stream's flow-control window
 * because auto-read is off until then. Held frames are released if the stream ends first.
 */
final class InboundStream extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(InboundStream.class);
    private final ProxyContext ctx;
    /** Stream's event loop only. */
    private boolean started;
    private final ArrayDeque<Object> held = new ArrayDeque<>();
    private Channel upstream;
    private Telemetry.Flow flow;

    InboundStream(ProxyContext ctx) {
        this.ctx = ctx;
    }

    @Override
    public void channelActive(ChannelHandlerContext c) {
        c.channel().config().setAutoRead(false);
        c.read();
        c.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
        if (!started && msg instanceof Http2HeadersFrame headers) {
            started = true;
            start(c, headers);
            return;
        }
        if (msg instanceof Http2ResetFrame) {
            ReferenceCountUtil.release(msg);
            abort("client reset the stream before the tunnel was up");
            return;
        }
        if (!started) {
            ReferenceCountUtil.release(msg);
            refuse(c, Optional.empty(), null, new Outcome.BadRequest("stream began without HEADERS"));
            return;
        }
        held.add(msg);
    }

    private void start(ChannelHandlerContext c, Http2HeadersFrame frame) {
        Http2Headers h = frame.headers();
        Http2StreamChannel stream = (Http2StreamChannel) c.channel();
        Channel conn = stream.parent();
        Optional<SpiffeId> peerId = conn.attr(HboneServer.PEER_ID).get();
        InetSocketAddress tcpPeer = (InetSocketAddress) conn.remoteAddress();
        Optional<Outcome.BadRequest> bad = Hbone.notConnect(frame);
        if (bad.isPresent()) {
            refuse(c, Optional.empty(), null, bad.get());
            return;
        }
        Optional<InetSocketAddress> target = Hbone.parseAuthority(h.authority());
        Snapshot state = ctx.index().snapshot();
        Optional<InetSocketAddress> claimed = forwardedFor(h);
        SourceAddress source = SourceAddress.of(state, peerId, tcpPeer, claimed);
        if (source.basis() == SourceAddress.Basis.CLAIM_IGNORED) {
            LOG.debug("HBONE CONNECT {} from {} ({}): forwarded for={} does not count (not a workload of the peer's "
                    + "node with its identity, nor vouched for by a waypoint); the source is the TCP peer",
                    h.authority(), tcpPeer, peerId.map(SpiffeId::toString).orElse("-"), claimed.get());
        }
        InetSocketAddress src = source.address();
        InboundDecision d = InboundDecision.decide(state, ctx.nodeName(), ctx.agentPorts(), peerId,
                src.getAddress(), target.get());
        if (d.outcome() instanceof Outcome.BadRequest || d.outcome() instanceof Outcome.NoWorkload) {
            refuse(c, Optional.of(d), target.get(), d.outcome());
            return;
        }
        flow = HboneServer.open(ctx, HboneServer.labels(d, peerId), src, target.get());
        if (!(d.outcome() instanceof Outcome.Allowed)) {
            answer(c, d.outcome());
            flow.close(d.outcome());
            return;
        }
        ChannelFuture f = ctx.transport().connect(stream.eventLoop(), target.get(), ctx.connectTimeout());
        upstream = f.channel();
        f.addListener((ChannelFutureListener) done -> {
            if (!stream.isActive()) {
                done.channel().close();
                return;
            }
            if (!done.isSuccess()) {
                Outcome o = new Outcome.Unreachable("connection to " + target.get() + " failed: "
                        + done.cause().getMessage());
                answer(c, o);
                flow.close(o);
                return;
            }
            stream.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200"), false));
            c.pipeline().remove(this);
            Relay.join(stream, done.channel(), flow);
            ctx.connections().track(new ConnectionManager.Basis(peerId, src.getAddress(), target.get()), state,
                    flow, done.channel());
            while (!held.isEmpty()) {
                stream.pipeline().fireChannelRead(held.poll());
            }
            stream.pipeline().fireChannelReadComplete();
        });
    }

    private static Optional<InetSocketAddress> forwardedFor(Http2Headers h) {
        CharSequence fwd = h.get("forwarded");
        if (fwd == null) {
            return Optional.empty();
        }
        for (String part : fwd.toString().split(";")) {
            String p = part.trim();
            if (p.regionMatches(true, 0, "for=", 0, 4)) {
                String v = p.substring(4).replace("\"", "");
                Optional<InetSocketAddress> a = Hbone.parseAuthority(v);
                if (a.isPresent()) {
                    return a;
                }
                Optional<InetAddress> ip = Hbone.literal(v);
                return ip.map(x -> new InetSocketAddress(x, 0));
            }
        }
        return Optional.empty();
    }

    /**
     * Answers a request refused before any flow exists, and records it: one access-log line
     * (rate-limited) and one flow record, from the connection's TCP peer (not what it claims in
     * {@code forwarded}) to {@code target} (or, when the request named none, this server's address).
     */
    private void refuse(ChannelHandlerContext c, Optional<InboundDecision> d, InetSocketAddress target,
            Outcome outcome) {
        Channel conn = c.channel().parent();
        Optional<SpiffeId> peerId = conn.attr(HboneServer.PEER_ID).get();
        ConnectionLabels labels = d.map(x -> HboneServer.labels(x, peerId)).orElseGet(() -> new ConnectionLabels(
                "destination", Optional.empty(), peerId, Optional.empty(), Optional.empty(), "", true));
        ctx.telemetry().refused("inbound", labels, conn.remoteAddress(), target != null ? target : conn.localAddress(),
                outcome);
        answer(c, outcome);
    }

    /** Answers a refusal with its HBONE status and END_STREAM, then closes the stream. */
    private void answer(ChannelHandlerContext c, Outcome refusal) {
        LOG.debug("HBONE stream on {} answered {}: {}", c.channel().parent().remoteAddress(), refusal.hboneStatus(),
                refusal.reason());
        c.writeAndFlush(new DefaultHttp2HeadersFrame(
                new DefaultHttp2Headers().status(String.valueOf(refusal.hboneStatus())), true))
                .addListener(ChannelFutureListener.CLOSE);
        releaseHeld();
    }

    private void abort(String reason) {
        if (upstream != null) {
            upstream.close();
        }
        if (flow != null) {
            flow.close(new Outcome.ClientClosed(reason));
        }
        releaseHeld();
    }

    private void releaseHeld() {
        while (!held.isEmpty()) {
            ReferenceCountUtil.release(held.poll());
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext c) {
        abort("stream closed before the tunnel was up");
        c.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
        LOG.debug("HBONE stream failed before the tunnel was up: {}", cause.toString());
        abort("stream failed: " + cause.getMessage());
        c.close();
    }
}
