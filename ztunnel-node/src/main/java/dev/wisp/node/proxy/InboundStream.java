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
import io.netty.util.ReferenceCountUtil;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One HBONE CONNECT stream on the server, HTTP/2 or HTTP/3 ({@link StreamProtocol}): validates the request, decides its source address
 * ({@link SourceAddress}: a {@code forwarded} claim counts only when the peer's certificate backs
 * it), authorizes it ({@link InboundDecision}), connects to the destination workload and answers 200
 * only once that TCP connection exists (otherwise the refusal's {@link Outcome#hboneStatus}, with
 * END_STREAM), then hands both channels to a {@link Relay} and leaves the pipeline. With the agent's
 * {@link FairShare}, the source workload's stream may wait before it connects, and its relay's reads are
 * charged ({@link InboundShare}).
 *
 * <p>Frames that arrive before the relay starts (a client may send DATA right after HEADERS) are
 * held in order and replayed into the relay; they are bounded by the stream's flow-control window
 * because auto-read is off until then. Held frames are released if the stream ends first.
 */
final class InboundStream extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(InboundStream.class);
    private final ProxyContext ctx;
    private final StreamProtocol protocol;
    /** Stream's event loop only. */
    private boolean started;
    private final HeldFrames held = new HeldFrames();
    private Channel upstream;
    private Telemetry.Flow flow;
    /** The agent's workloads' share, which this stream's source workload joins; null: none. */
    private final FairShare fair;

    InboundStream(ProxyContext ctx, StreamProtocol protocol, FairShare fair) {
        this.ctx = ctx;
        this.protocol = protocol;
        this.fair = fair;
    }

    @Override
    public void channelActive(ChannelHandlerContext c) {
        c.channel().config().setAutoRead(false);
        c.read();
        c.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
        Optional<StreamProtocol.Head> head = started ? Optional.empty() : protocol.head(msg);
        if (head.isPresent()) {
            started = true;
            ReferenceCountUtil.release(msg);
            start(c, head.get());
            return;
        }
        if (protocol.isReset(msg)) {
            ReferenceCountUtil.release(msg);
            abort("client reset the stream before the tunnel was up");
            return;
        }
        if (!started) {
            ReferenceCountUtil.release(msg);
            refuse(c, Optional.empty(), null, new Outcome.BadRequest("stream began without HEADERS"));
            return;
        }
        held.hold(msg);
    }

    private void start(ChannelHandlerContext c, StreamProtocol.Head h) {
        Channel stream = c.channel();
        Optional<SpiffeId> peerId = protocol.peerId(stream);
        InetSocketAddress tcpPeer = protocol.remote(stream);
        Optional<Outcome.BadRequest> bad = Hbone.notConnect(h.method(), h.endStream(), h.authority());
        if (bad.isPresent()) {
            refuse(c, Optional.empty(), null, bad.get());
            return;
        }
        Optional<InetSocketAddress> target = Hbone.parseAuthority(h.authority());
        Snapshot state = ctx.index().snapshot();
        Optional<InetSocketAddress> claimed = forwardedFor(h.forwarded());
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
        flow = HboneServer.open(ctx, HboneServer.labels(d, peerId).withProtocol(protocol.label()), src,
                target.get());
        if (!(d.outcome() instanceof Outcome.Allowed)) {
            answer(c, d.outcome());
            flow.close(d.outcome());
            return;
        }
        InboundShare.admit(ctx.telemetry().registry(), fair, d.source(), stream, System::nanoTime,
                budget -> connect(c, src, target.get(), peerId, state, budget));
    }

    /**
     * Connects to {@code target} from {@code src} and, once connected, answers 200 and relays the
     * stream to it, each read charged to {@code budget} (null: none).
     */
    private void connect(ChannelHandlerContext c, InetSocketAddress src, InetSocketAddress target,
            Optional<SpiffeId> peerId, Snapshot state, Relay.Budget budget) {
        Channel stream = c.channel();
        ChannelFuture f = ctx.transport().connect(stream.eventLoop(), src.getAddress(), target,
                ctx.connectTimeout());
        upstream = f.channel();
        f.addListener((ChannelFutureListener) done -> {
            if (!stream.isActive()) {
                done.channel().close();
                return;
            }
            if (!done.isSuccess()) {
                Outcome o = new Outcome.Unreachable("connection to " + target + " failed: "
                        + done.cause().getMessage());
                answer(c, o);
                flow.close(o);
                return;
            }
            protocol.respond(c, 200, false);
            // The relay's handlers go in behind this one, which then leaves; frames held until now
            // continue from here, in order, into them (both channels are on this loop).
            protocol.toRelay(stream);
            Relay.join(stream, done.channel(), flow, budget);
            c.pipeline().remove(this);
            ctx.connections().track(new ConnectionManager.Basis(peerId, src.getAddress(), target), state,
                    flow, done.channel());
            held.passOn(c);
            c.fireChannelReadComplete();
        });
    }

    private static Optional<InetSocketAddress> forwardedFor(CharSequence fwd) {
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
                // RFC 7239 writes an IPv6 node without a port in brackets too: "[fd00::1]".
                boolean bracketed = v.startsWith("[") && v.endsWith("]") && v.indexOf(':') > 0;
                Optional<InetAddress> ip = Hbone.literal(bracketed ? v.substring(1, v.length() - 1) : v);
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
        refused(ctx, protocol, c, d, target, outcome);
        held.release();
    }

    /**
     * Refuses a stream before its request was read (as {@link #refuse}, with this server's address as
     * the target); the future completes when the answer is written.
     */
    static ChannelFuture refused(ProxyContext ctx, StreamProtocol protocol, ChannelHandlerContext c,
            Outcome outcome) {
        return refused(ctx, protocol, c, Optional.empty(), null, outcome);
    }

    private static ChannelFuture refused(ProxyContext ctx, StreamProtocol protocol, ChannelHandlerContext c,
            Optional<InboundDecision> d, InetSocketAddress target, Outcome outcome) {
        Optional<SpiffeId> peerId = protocol.peerId(c.channel());
        ConnectionLabels labels = d.map(x -> HboneServer.labels(x, peerId)).orElseGet(() -> new ConnectionLabels(
                "destination", Optional.empty(), peerId, Optional.empty(), Optional.empty(), "", true))
                .withProtocol(protocol.label());
        ctx.telemetry().refused("inbound", labels, protocol.remote(c.channel()),
                target != null ? target : protocol.local(c.channel()), outcome);
        return respond(protocol, c, outcome);
    }

    /** Answers a refusal with its HBONE status and END_STREAM, then closes the stream. */
    private void answer(ChannelHandlerContext c, Outcome refusal) {
        respond(protocol, c, refusal);
        held.release();
    }

    private static ChannelFuture respond(StreamProtocol protocol, ChannelHandlerContext c, Outcome refusal) {
        LOG.debug("HBONE {} stream from {} answered {}: {}", protocol.label(), protocol.remote(c.channel()),
                refusal.hboneStatus(), refusal.reason());
        return protocol.respond(c, refusal.hboneStatus(), true);
    }

    private void abort(String reason) {
        if (upstream != null) {
            upstream.close();
        }
        if (flow != null) {
            flow.close(new Outcome.ClientClosed(reason));
        }
        held.release();
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
