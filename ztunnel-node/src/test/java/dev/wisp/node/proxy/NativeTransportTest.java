package dev.wisp.node.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.util.ReferenceCountUtil;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Why the agent runs on io_uring or NIO and never on Netty's native epoll: the sequence a relay goes
 * through when its client half-closes while the other direction is still busy. The client sends a
 * request and its FIN; the relay, holding back reads for backpressure, turns auto-read off, then on
 * again, and writes the answer — more than the socket buffer holds, so the transport has to wait for
 * the socket to become writable.
 *
 * <p>On Netty 4.2.18 (and 4.2.20's class files are the same there) the epoll transport removes a
 * channel from the epoll set when its interest set becomes empty (input shut down, so no more
 * EPOLLRDHUP; auto-read off, so no EPOLLIN; nothing pending, so no EPOLLOUT) but keeps the
 * registration marked as added, so the next change is an {@code EPOLL_CTL_MOD} that fails with
 * ENOENT: the channel fails and the answer is cut short. That is the data loss wave 1 saw in
 * {@code HboneLoopbackTest} (a 64 MiB echo back at 48–56 MiB). The same sequence on the agent's own
 * {@link Transport} delivers every byte on both kinds it offers.
 */
class NativeTransportTest {
    static final int ANSWER = 8 << 20;

    @ParameterizedTest
    @EnumSource(Transport.Kind.class)
    void theAgentsTransportsDeliverTheWholeAnswerAfterAHalfClose(Transport.Kind kind) throws Exception {
        assertThat(kind.available()).as(kind.label() + " on this machine: " + kind.unavailability()).isTrue();
        try (Transport t = Transport.create(1, kind)) {
            Queue<Throwable> failures = new ConcurrentLinkedQueue<>();
            Channel server = t.listen(new InetSocketAddress("127.0.0.1", 0), true, ch -> ch.pipeline().addLast(
                    new PauseResumeAnswer(failures)));
            try {
                assertThat(exchange(server)).as("answer bytes on " + kind.label()).isEqualTo(ANSWER);
                assertThat(failures).isEmpty();
            } finally {
                server.close().syncUninterruptibly();
            }
        }
    }

    @Test
    void nettysEpollLosesThePausedHalfClosedChannel() throws Exception {
        assertThat(Epoll.isAvailable()).as("native epoll on this machine: " + Epoll.unavailabilityCause()).isTrue();
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        try {
            Queue<Throwable> failures = new ConcurrentLinkedQueue<>();
            // The options Transport.listen gives a relayed listener: auto-read off, half-closure on.
            Channel server = new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                    .childOption(ChannelOption.AUTO_READ, false).childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                    .childHandler(new ChannelInitializer<>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(new PauseResumeAnswer(failures));
                        }
                    }).bind(new InetSocketAddress("127.0.0.1", 0)).syncUninterruptibly().channel();
            try {
                long received = exchange(server);
                // If this fails, Netty has fixed its epoll registration: measure epoll against io_uring
                // and NIO and reconsider Transport.Kind (ARCHITECTURE.md, "Event loops").
                assertThat(received).as("answer bytes on native epoll").isLessThan(ANSWER);
                await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(failures).anySatisfy(
                        f -> assertThat(f).hasStackTraceContaining("epoll_ctl").hasStackTraceContaining(
                                "No such file or directory")));
            } finally {
                server.close().syncUninterruptibly();
            }
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    /** Sends a request and a FIN, then counts the answer's bytes until the server closes. */
    private static long exchange(Channel server) throws Exception {
        try (Socket s = new Socket()) {
            s.setSoTimeout(20_000);
            s.setReceiveBufferSize(64 << 10);
            s.connect(server.localAddress());
            s.getOutputStream().write("request".getBytes());
            s.shutdownOutput();
            long n = 0;
            byte[] buf = new byte[64 << 10];
            InputStream in = s.getInputStream();
            for (int r; (r = in.read(buf)) >= 0;) {
                n += r;
            }
            return n;
        } catch (java.net.SocketException reset) {
            return -1;
        }
    }

    /**
     * The relay's steps on one connection: read with auto-read on until the peer's FIN, pause reading
     * (auto-read off) as backpressure does, resume it on a later loop turn, then write {@link #ANSWER} bytes and
     * close. Every failure of a step is added to {@code failures}.
     */
    private static final class PauseResumeAnswer extends ChannelInboundHandlerAdapter {
        private final Queue<Throwable> failures;

        PauseResumeAnswer(Queue<Throwable> failures) {
            this.failures = failures;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ctx.channel().config().setAutoRead(true); // as Relay starts a side
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ReferenceCountUtil.release(msg);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt != ChannelInputShutdownEvent.INSTANCE) {
                return;
            }
            Channel ch = ctx.channel();
            ch.config().setAutoRead(false);
            // A later turn of the loop, after the transport has processed the half-close.
            ch.eventLoop().schedule(() -> {
                try {
                    ch.config().setAutoRead(true);
                    ByteBuf answer = Unpooled.wrappedBuffer(new byte[ANSWER]);
                    ch.writeAndFlush(answer).addListener(f -> {
                        if (!f.isSuccess()) {
                            failures.add(f.cause());
                        }
                        ch.close();
                    });
                } catch (RuntimeException e) {
                    failures.add(e);
                    ch.close();
                }
            }, 50, TimeUnit.MILLISECONDS);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            failures.add(cause);
            ctx.close();
        }
    }
}
