package dev.wisp.node.proxy;

import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.util.ReferenceCountUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The first handler of a client's CONNECT stream, the one shape both {@link Outbound} (a captured
 * connection's tunnel) and {@link HboneTunnel} (a waypoint's request stream) use: when the stream
 * is active it sends the request with auto-read off, reads the one answer and hands it to
 * {@link #answered}; frames that arrive behind the answer are held until then and passed on, in
 * order, once the subclass has put its handlers in behind this one, which then leaves the pipeline.
 * A stream that ends or fails before an answer is told to {@link #unanswered}, once. Stream's event
 * loop only.
 *
 * <p>A 421 answer (the server no longer accepts the certificate the connection was made with, or its
 * root was retired, and sent GOAWAY ahead of the answer) is retried once when the caller gave a
 * retry: the stream is closed and the retry opens a new stream, which the pool (having read the
 * GOAWAY) puts on a new connection made with the current certificate. The retry itself is given no
 * retry, so a server that answers 421 again is a failure like any other status.
 *
 * <p>A stream the server never processed is retried the same way (once, on a new stream the pool
 * puts elsewhere): one whose ID is above the last stream ID of a GOAWAY the server sent (RFC 9113
 * §6.8: such a request "can be safely retried"; Netty tells those streams with the GOAWAY frame as
 * a user event, then closes them), and one whose request could not be written at all (the pool gave
 * out a connection whose GOAWAY arrived meanwhile). A draining agent (a take-over, a rolling
 * restart) sends GOAWAY while clients are opening streams: without this, those few would fail.
 */
abstract class ConnectAnswer extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(ConnectAnswer.class);
    /** The CONNECT target, as the failures name it. */
    private final String target;
    /** Opens the request again on a new stream after a 421; null when this is the retry. */
    private final Runnable retry;
    private boolean answered;
    /** The server never saw this request (a GOAWAY below its stream ID, or the request not written). */
    private boolean unprocessed;
    private final HeldFrames held = new HeldFrames();

    /** @param retry what opens the CONNECT again after a 421 (once), or null for no retry */
    ConnectAnswer(String target, Runnable retry) {
        this.target = target;
        this.retry = retry;
    }

    /** Whether {@code answer} is the server's "retry on another connection" (HTTP 421). */
    static boolean misdirected(Outcome answer) {
        return answer instanceof Outcome.UpstreamStatus u && u.status() == 421;
    }

    /** The CONNECT target: the request's authority. */
    final String target() {
        return target;
    }

    /** Writes the CONNECT request on the stream. */
    abstract ChannelFuture request(ChannelHandlerContext c);

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
        request(c).addListener(f -> {
            if (!f.isSuccess() && !answered) {
                unprocessed = true;
                c.close();
            }
        });
        c.read();
        c.fireChannelActive();
    }

    @Override
    public final void channelRead(ChannelHandlerContext c, Object msg) {
        if (answered) {
            held.hold(msg);
            return;
        }
        answered = true;
        Outcome answer;
        try {
            answer = read(msg);
        } finally {
            ReferenceCountUtil.release(msg);
        }
        if (retry != null && misdirected(answer)) {
            LOG.debug("{}; retrying on a new connection", answer.reason());
            c.close();
            retry.run();
            return;
        }
        if (!answered(c, answer)) {
            return;
        }
        c.pipeline().remove(this);
        held.passOn(c);
    }

    @Override
    public final void userEventTriggered(ChannelHandlerContext c, Object evt) {
        if (evt instanceof Http2GoAwayFrame goAway) {
            // Sent only to the streams above the GOAWAY's last stream ID: the server will not process this one.
            unprocessed = true;
            goAway.release();
            return;
        }
        c.fireUserEventTriggered(evt);
    }

    @Override
    public final void channelInactive(ChannelHandlerContext c) {
        held.release();
        if (!answered) {
            answered = true;
            if (unprocessed && retry != null) {
                // The pool read the GOAWAY before this stream closed: the retry goes to another connection.
                LOG.debug("HBONE CONNECT {}: not processed by the server (GOAWAY); retrying on another connection",
                        target);
                retry.run();
            } else {
                unanswered(new Outcome.Unreachable("HBONE stream to " + target + " closed before an answer"
                        + (unprocessed ? " (the server's GOAWAY refused it)" : "")));
            }
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
