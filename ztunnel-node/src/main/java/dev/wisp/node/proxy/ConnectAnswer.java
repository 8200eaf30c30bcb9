package dev.wisp.node.proxy;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;

/**
 * The first handler of a client's CONNECT stream, the one shape both {@link Outbound} (a captured
 * connection's tunnel) and {@link HboneTunnel} (a waypoint's request stream) use: when the stream
 * is active it sends the request with auto-read off, reads the one answer and hands it to
 * {@link #answered}; frames that arrive behind the answer are held until then and passed on, in
 * order, once the subclass has put its handlers in behind this one, which then leaves the pipeline.
 * A stream that ends or fails before an answer is told to {@link #unanswered}, once. Stream's event
 * loop only.
 */
abstract class ConnectAnswer extends ChannelInboundHandlerAdapter {
    /** The CONNECT target, as the failures name it. */
    private final String target;
    private boolean answered;
    private final ArrayDeque<Object> held = new ArrayDeque<>();

    ConnectAnswer(String target) {
        this.target = target;
    }

    /** The CONNECT target: the request's authority. */
    final String target() {
        return target;
    }

    /** Writes the CONNECT request on the stream. */
    abstract void request(ChannelHandlerContext c);

    /** What the peer's answer means (the message is released afterwards). */
    abstract Outcome read(Object answer);

    /**
     * Acts on the answer: returns true when the stream is set up for the frames that follow (this
     * handler then leaves and passes them on), false when it has been closed.
     */
    abstract boolean answered(ChannelHandlerContext c, Outcome answer);

    /** The stream ended or failed before any answer. */
    abstract void unanswered(Outcome why);

    @Override
    public final void channelActive(ChannelHandlerContext c) {
        c.channel().config().setAutoRead(false);
        request(c);
        c.read();
        c.fireChannelActive();
    }

    @Override
    public final void channelRead(ChannelHandlerContext c, Object msg) {
        if (answered) {
            held.add(msg);
            return;
        }
        answered = true;
        Outcome answer;
        try {
            answer = read(msg);
        } finally {
            ReferenceCountUtil.release(msg);
        }
        if (!answered(c, answer)) {
            return;
        }
        c.pipeline().remove(this);
        while (!held.isEmpty()) {
            c.fireChannelRead(held.poll());
        }
    }

    @Override
    public final void channelInactive(ChannelHandlerContext c) {
        while (!held.isEmpty()) {
            ReferenceCountUtil.release(held.poll());
        }
        if (!answered) {
            answered = true;
            unanswered(new Outcome.Unreachable("HBONE stream to " + target + " closed before an answer"));
        }
        c.fireChannelInactive();
    }

    @Override
    public final void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
        if (!answered) {
            // An HTTP/2 error on the stream before any answer: what came back was not HBONE.
            answered = true;
            unanswered(new Outcome.Malformed("HBONE CONNECT " + target + " failed: " + cause.getMessage()));
        }
        c.close();
    }
}
