package dev.wisp.node.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2ResetFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import java.util.concurrent.TimeUnit;
import dev.wisp.node.telemetry.Telemetry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Moves bytes both ways between two channels once a tunnel is established: a TCP connection and an
 * HBONE stream (HTTP/2 DATA frames), or two TCP connections.
 *
 * <p><b>Ownership.</b> Each side's handler owns the buffers it reads until it hands them to the
 * other side's {@code write}, which then owns them; frames are unwrapped and released here. Both
 * sides may live on different event loops (a pooled HBONE connection serves TCP connections accepted
 * on any loop): setup and auto-read changes run on each channel's own loop, writes across loops go
 * through Netty's thread-safe {@code write}/{@code flush}, the end flags are volatile, and
 * completion is decided once under an atomic flag.
 *
 * <p><b>Backpressure.</b> A side reads only while the other side is writable: when a write makes the
 * peer unwritable, auto-read stops on this side and resumes on the peer's writability change. For an
 * HTTP/2 stream, not reading also withholds WINDOW_UPDATEs, so the remote sender stops at the stream
 * window. Memory per relay is therefore bounded by the write buffer high-water marks plus one
 * stream window.
 *
 * <p><b>Byte rate.</b> A relay may be given its source workload's byte budget ({@link
 * WorkloadLimits#bytes}): every read is charged to it, and a read over it stops that side's reading
 * for the time the budget says (a timer on its loop), as an unwritable peer would; the sender is then
 * held by its TCP or stream window. A side reads only while its peer is writable <em>and</em> it is
 * not paused.
 *
 * <p><b>Closing.</b> A TCP FIN becomes an empty DATA frame with END_STREAM and vice versa
 * (half-close both ways: the other direction keeps flowing). A TCP reset or error becomes
 * RST_STREAM(CANCEL); a received RST_STREAM resets the TCP connection (SO_LINGER 0). The relay is
 * complete when both directions have ended and both FIN / END_STREAM writes have completed (so
 * nothing still queued is lost to the close); then both channels are closed and {@code onClose}
 * runs once.
 */
final class Relay {
    private static final Logger LOG = LoggerFactory.getLogger(Relay.class);
    private final Side client;
    private final Side server;
    /** Counts the bytes moved (client→server, server→client); closed once, when the relay completes. */
    private final Telemetry.Flow flow;
    /** Set once, by whichever loop completes the relay. */
    private final java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
    /** Bytes just read → nanoseconds to stop reading (the source workload's byte budget); null: no budget. */
    private final Budget budget;

    /** The source workload's budget: what a side read, and how long (ns) that side must stop reading (0: read on). */
    @FunctionalInterface
    interface Budget {
        /** {@code n} bytes just read from the client side ({@code fromClient}) or the server side. */
        long read(boolean fromClient, long n);
    }

    private Relay(Channel client, Channel server, Telemetry.Flow flow, Budget budget) {
        this.flow = flow;
        this.budget = budget;
        this.client = new Side(client, true);
        this.server = new Side(server, false);
    }

    /**
     * Joins {@code client} (the side that initiated) and {@code server}, both active with auto-read
     * off, and starts reading on both. Each side is set up on its own event loop: a pooled HBONE
     * stream usually lives on another loop than the TCP connection it carries, and installing the
     * handler or switching auto-read from a foreign thread races with what that loop is doing (a
     * read could reach the pipeline before the handler is there). Bytes are counted into
     * {@code flow}, which is closed as {@link Outcome.Allowed} when the relay completes.
     */
    static void join(Channel client, Channel server, Telemetry.Flow flow) {
        join(client, server, flow, null);
    }

    /**
     * As {@link #join(Channel, Channel, Telemetry.Flow)}, each read (either side) charged to {@code
     * budget}, which answers how many nanoseconds that side must stop reading (0: read on); null: none.
     */
    static void join(Channel client, Channel server, Telemetry.Flow flow, Budget budget) {
        Relay r = new Relay(client, server, flow, budget);
        onLoop(client, r.client::start);
        onLoop(server, r.server::start);
    }

    /** Runs {@code task} on {@code ch}'s event loop: now when already there, else as a task. */
    static void onLoop(Channel ch, Runnable task) {
        if (ch.eventLoop().inEventLoop()) {
            task.run();
        } else {
            ch.eventLoop().execute(task);
        }
    }

    private Side other(Side s) {
        return s == client ? server : client;
    }

    private void count(Side from, long n) {
        if (from == client) {
            flow.toServer(n);
        } else {
            flow.toClient(n);
        }
        if (budget != null) {
            long pause = budget.read(from == client, n);
            if (pause > 0) {
                from.pause(pause);
            }
        }
    }

    private void maybeDone(String error) {
        if (done.get()) {
            return;
        }
        if ((error != null || (client.inputEnded && server.inputEnded && client.outputDone && server.outputDone)
                || (!client.ch.isActive() && !server.ch.isActive())) && done.compareAndSet(false, true)) {
            if (error != null) {
                client.reset();
                server.reset();
            } else {
                client.ch.close();
                server.ch.close();
            }
            // The tunnel was up: whatever ends it, the connection was allowed (error says how it ended).
            flow.close(Outcome.ended(error));
        }
    }

    /** One channel of the relay and the handler reading from it. */
    private final class Side extends ChannelDuplexHandler {
        final Channel ch;
        final boolean isClient;
        final boolean stream;
        /** This side's peer sent FIN / END_STREAM. Written by this side's loop, read by both. */
        volatile boolean inputEnded;
        /** We sent FIN / END_STREAM on this side. Written by the other side's loop, read by both. */
        volatile boolean outputEnded;
        /** That FIN / END_STREAM has been written out (or cannot be any more). Set by this side's loop. */
        volatile boolean outputDone;
        /** Reading stopped for the byte budget until a timer ends it. This side's loop only. */
        boolean paused;

        Side(Channel ch, boolean isClient) {
            this.ch = ch;
            this.isClient = isClient;
            this.stream = ch instanceof Http2StreamChannel;
        }

        /** On this side's loop: installs the handler and starts reading. */
        void start() {
            ch.config().setWriteBufferWaterMark(Hbone.WATER_MARK);
            ch.pipeline().addLast("relay", this);
            if (!ch.isActive()) {
                // Closed before this task ran: channelInactive will not come again.
                maybeDone((isClient ? "client" : "server") + " side closed before the relay started");
                return;
            }
            ch.config().setAutoRead(true);
        }

        /** Writes {@code buf} (ownership passes) to this side. */
        void write(ByteBuf buf) {
            if (!ch.isActive() || outputEnded) {
                buf.release();
                return;
            }
            ch.write(stream ? new DefaultHttp2DataFrame(buf) : buf);
        }

        void endOutput() {
            if (outputEnded || !ch.isActive()) {
                outputEnded = true;
                outputDone();
                return;
            }
            outputEnded = true;
            // Complete only once the FIN / END_STREAM is written: it follows every byte relayed to
            // this side, and closing earlier would drop what still sits in the outbound buffer.
            if (stream) {
                ch.writeAndFlush(new DefaultHttp2DataFrame(Unpooled.EMPTY_BUFFER, true))
                        .addListener(f -> outputDone());
            } else {
                ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> ((DuplexChannel) ch).shutdownOutput()
                        .addListener(g -> outputDone()));
            }
        }

        /** On this side's loop: stops reading for {@code nanos} (the byte budget), then reads on if the peer is writable. */
        void pause(long nanos) {
            if (paused) {
                return;
            }
            paused = true;
            ch.config().setAutoRead(false);
            ch.eventLoop().schedule(() -> {
                paused = false;
                readIf(other(this).ch.isWritable());
            }, nanos, TimeUnit.NANOSECONDS);
        }

        /** On this side's loop: reads while {@code peerWritable} and not paused for the byte budget. */
        void readIf(boolean peerWritable) {
            ch.config().setAutoRead(peerWritable && !paused);
        }

        private void outputDone() {
            outputDone = true;
            maybeDone(null);
        }

        void reset() {
            if (!ch.isActive()) {
                return;
            }
            if (stream) {
                ch.writeAndFlush(new DefaultHttp2ResetFrame(Http2Error.CANCEL))
                        .addListener(ChannelFutureListener.CLOSE);
            } else {
                onLoop(ch, () -> {
                    ch.config().setOption(ChannelOption.SO_LINGER, 0);
                    ch.close();
                });
            }
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            Side peer = other(this);
            if (msg instanceof ByteBuf buf) {
                count(this, buf.readableBytes());
                peer.write(buf);
            } else if (msg instanceof Http2DataFrame frame) {
                int n = frame.content().readableBytes();
                boolean end = frame.isEndStream();
                if (n > 0) {
                    count(this, n);
                    peer.write(frame.content().retain());
                }
                frame.release();
                if (end) {
                    inputEnded();
                }
            } else if (msg instanceof Http2HeadersFrame headers) {
                if (headers.isEndStream()) {
                    inputEnded();
                }
            } else if (msg instanceof Http2ResetFrame rst) {
                inputEnded = true;
                maybeDone("peer reset the stream (" + Http2Error.valueOf(rst.errorCode()) + ")");
            } else {
                ReferenceCountUtil.release(msg);
            }
            if (!peer.ch.isWritable()) {
                ch.config().setAutoRead(false);
                // The peer may have become writable (on its loop) between the check and the switch.
                if (peer.ch.isWritable()) {
                    readIf(true);
                }
            }
        }

        private void inputEnded() {
            inputEnded = true;
            other(this).endOutput();
            maybeDone(null);
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            other(this).ch.flush();
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            Side peer = other(this);
            // Read on the peer's loop whether this side is writable at that moment.
            onLoop(peer.ch, () -> peer.readIf(ch.isWritable()));
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                inputEnded();
            } else {
                ReferenceCountUtil.release(evt);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (!(inputEnded && outputEnded)) {
                maybeDone((isClient ? "client" : "server") + " side closed before the end of the stream");
            } else {
                maybeDone(null);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.debug("relay {} side {} failed", isClient ? "client" : "server", ch, cause);
            maybeDone((isClient ? "client" : "server") + " side failed: " + cause.getMessage());
        }
    }
}
