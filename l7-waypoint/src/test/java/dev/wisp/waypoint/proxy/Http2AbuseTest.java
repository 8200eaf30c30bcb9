package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;
import static io.netty.handler.codec.http2.Http2Flags.END_HEADERS;
import static io.netty.handler.codec.http2.Http2Flags.END_STREAM;
import static io.netty.handler.codec.http2.Http2FrameTypes.CONTINUATION;
import static io.netty.handler.codec.http2.Http2FrameTypes.GO_AWAY;
import static io.netty.handler.codec.http2.Http2FrameTypes.HEADERS;
import static io.netty.handler.codec.http2.Http2FrameTypes.PING;
import static io.netty.handler.codec.http2.Http2FrameTypes.RST_STREAM;
import static io.netty.handler.codec.http2.Http2FrameTypes.SETTINGS;

import dev.wisp.node.telemetry.Telemetry;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersDecoder;
import io.netty.handler.codec.http2.DefaultHttp2HeadersEncoder;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2Headers;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * HTTP/2 attacks inside a tunnel, against the waypoint's HTTP/2 server ({@link InnerProtocol}, as the
 * bytes of an HBONE stream reach it), with frames written by hand: each is bounded, by a GOAWAY and the
 * connection closed, or by the one stream refused while the connection serves on.
 */
class Http2AbuseTest {
    final Telemetry telemetry = new Telemetry();
    final AtomicInteger exchanges = new AtomicInteger();
    final EmbeddedChannel server = new EmbeddedChannel(inner());
    final DefaultHttp2HeadersEncoder hpack = new DefaultHttp2HeadersEncoder();
    final DefaultHttp2HeadersDecoder unpack = new DefaultHttp2HeadersDecoder(false);
    final ByteBuf fromServer = Unpooled.buffer();

    InnerProtocol inner() {
        return new InnerProtocol(h2 -> {
            exchanges.incrementAndGet();
            return new Exchange(ExchangeMetricsTest.VIP, Optional.of(ExchangeMetricsTest.CLIENT),
                    ExchangeMetricsTest.routing(telemetry), h2);
        });
    }

    /** One frame as the wire carries it. */
    record Frame(int type, int flags, int stream, byte[] payload) {
        int errorCode() {
            int at = type == GO_AWAY ? 4 : 0;
            return ((payload[at] & 0xff) << 24) | ((payload[at + 1] & 0xff) << 16) | ((payload[at + 2] & 0xff) << 8)
                    | (payload[at + 3] & 0xff);
        }
    }

    static byte[] frame(int type, int flags, int stream, byte[] payload) {
        ByteBuf b = Unpooled.buffer(9 + payload.length);
        b.writeMedium(payload.length).writeByte(type).writeByte(flags).writeInt(stream).writeBytes(payload);
        byte[] out = new byte[b.readableBytes()];
        b.readBytes(out);
        return out;
    }

    static byte[] preface() {
        ByteBuf p = Http2CodecUtil.connectionPrefaceBuf();
        byte[] out = new byte[p.readableBytes() + 9];
        p.readBytes(out, 0, p.readableBytes());
        System.arraycopy(frame(SETTINGS, 0, 0, new byte[0]), 0, out, out.length - 9, 9);
        return out;
    }

    byte[] block(Http2Headers headers) throws Http2Exception {
        ByteBuf b = Unpooled.buffer();
        hpack.encodeHeaders(1, headers, b);
        byte[] out = new byte[b.readableBytes()];
        b.readBytes(out);
        return out;
    }

    static Http2Headers request(String method, String path) {
        return new DefaultHttp2Headers().method(method).path(path).scheme("http").authority(
                "server.default.svc.cluster.local");
    }

    void send(byte[]... frames) {
        for (byte[] f : frames) {
            server.writeInbound(Unpooled.wrappedBuffer(f));
        }
        server.runPendingTasks();
    }

    /** What the server wrote since the last call, frame by frame. */
    List<Frame> frames() {
        for (ByteBuf b; (b = server.readOutbound()) != null;) {
            fromServer.writeBytes(b);
            b.release();
        }
        List<Frame> out = new ArrayList<>();
        while (fromServer.readableBytes() >= 9) {
            int length = fromServer.getUnsignedMedium(fromServer.readerIndex());
            if (fromServer.readableBytes() < 9 + length) {
                break;
            }
            fromServer.skipBytes(3);
            int type = fromServer.readUnsignedByte();
            int flags = fromServer.readUnsignedByte();
            int stream = fromServer.readInt() & 0x7fffffff;
            byte[] payload = new byte[length];
            fromServer.readBytes(payload);
            out.add(new Frame(type, flags, stream, payload));
        }
        return out;
    }

    String status(Frame headers) throws Http2Exception {
        return String.valueOf(unpack.decodeHeaders(headers.stream(), Unpooled.wrappedBuffer(headers.payload()))
                .status());
    }

    /**
     * Not an attack, the regression test of one: a prior-knowledge client's first stream is 1, which
     * Netty's multiplex handler once took for an HTTP/1.1 upgrade's and failed the connection over.
     */
    @Test
    void streamOneIsAnOrdinaryRequest() throws Exception {
        send(preface(), frame(HEADERS, END_HEADERS | END_STREAM, 1, block(request("GET", "/ok"))));
        List<Frame> answers = frames().stream().filter(f -> f.type() == HEADERS).toList();
        assertThat(answers).singleElement().satisfies(f -> {
            assertThat(f.stream()).isEqualTo(1);
            assertThat(status(f)).isEqualTo("200");
        });
        assertThat(server.isActive()).isTrue();
    }

    @Test
    void rapidResetIsCutWithGoawayAfterNettysLimit() throws Exception {
        send(preface());
        int opened = 0;
        while (server.isActive() && opened < 2_000) {
            int id = 2 * opened + 1;
            // CVE-2023-44487: a request, at once cancelled; the stream never counts against the
            // concurrency limit, so only counting resets stops it.
            send(frame(HEADERS, END_HEADERS, id, block(request("POST", "/ok"))), frame(RST_STREAM, 0, id, new byte[]{
                    0, 0, 0, 8}));
            opened++;
        }
        List<Frame> out = frames();
        assertThat(server.isActive()).as("the connection is closed").isFalse();
        assertThat(opened).as("requests sent before the close").isBetween(200, 201);
        assertThat(out).filteredOn(f -> f.type() == GO_AWAY).singleElement().satisfies(g -> assertThat(g.errorCode())
                .isEqualTo((int) Http2Error.ENHANCE_YOUR_CALM.code()));
        assertThat(exchanges.get()).isLessThanOrEqualTo(opened);
    }

    @Test
    void aContinuationFloodIsCutOnceTheHeaderBlockPassesItsBound() throws Exception {
        send(preface());
        byte[] fragment = new byte[16_384]; // the largest frame the server takes
        send(frame(HEADERS, 0, 1, fragment));
        int continuations = 0;
        while (server.isActive() && continuations < 1_000) {
            send(frame(CONTINUATION, 0, 1, fragment)); // never END_HEADERS
            continuations++;
        }
        assertThat(server.isActive()).as("the connection is closed").isFalse();
        // Netty refuses a header block over its limit plus a quarter (20 KiB): the second fragment.
        assertThat(continuations).as("fragments taken").isEqualTo(1);
        assertThat(frames()).filteredOn(f -> f.type() == GO_AWAY).singleElement().satisfies(g -> assertThat(g
                .errorCode()).isNotZero());
        assertThat(exchanges.get()).isZero();
    }

    @Test
    void anOversizedHeaderListIsAnswered431AndTheConnectionServesOn() throws Exception {
        send(preface());
        Http2Headers big = request("GET", "/ok").add("x-big", "a".repeat((int) InnerProtocol.MAX_HEADER_LIST));
        send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block(big)), frame(HEADERS, END_HEADERS | END_STREAM, 3,
                block(request("GET", "/ok"))));
        List<String> answers = new ArrayList<>();
        for (Frame f : frames()) {
            if (f.type() == HEADERS) {
                answers.add(f.stream() + " " + status(f));
            }
        }
        assertThat(answers).containsExactly("1 431", "3 200");
        assertThat(server.isActive()).isTrue();
        assertThat(ExchangeMetricsTest.sum(telemetry, "istio_requests_total")).as(
                "only the second stream reached the waypoint's routing").isEqualTo(1);
    }

    @Test
    void aStreamOverTheConcurrencyLimitIsRefused() throws Exception {
        send(preface());
        for (int i = 0; i <= InnerProtocol.MAX_STREAMS; i++) {
            // Each request's body is still to come, so each stream stays open.
            send(frame(HEADERS, END_HEADERS, 2 * i + 1, block(request("POST", "/ok"))));
        }
        List<Frame> resets = frames().stream().filter(f -> f.type() == RST_STREAM).toList();
        assertThat(resets).singleElement().satisfies(r -> {
            assertThat(r.stream()).isEqualTo(2 * InnerProtocol.MAX_STREAMS + 1);
            assertThat(r.errorCode()).isEqualTo((int) Http2Error.REFUSED_STREAM.code());
        });
        assertThat(server.isActive()).isTrue();
        assertThat(exchanges.get()).isEqualTo(InnerProtocol.MAX_STREAMS);
    }

    /**
     * PINGs or SETTINGS sent without end by a client that reads nothing: every one asks for an ACK,
     * which cannot leave once the socket's buffers are full, so Netty closes the connection once 10,000
     * control frames wait (its {@code maxQueuedControlFrames}) rather than queue more.
     */
    @ParameterizedTest(name = "frame type {0}")
    @ValueSource(ints = {PING, SETTINGS})
    void aControlFrameFloodFromAClientThatDoesNotReadIsCut(int type) throws Exception {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        CountDownLatch closed = new CountDownLatch(1);
        try {
            Channel listener = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class).childOption(
                    ChannelOption.SO_SNDBUF, 8 * 1024).childHandler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.closeFuture().addListener(f -> closed.countDown());
                            ch.pipeline().addLast(inner());
                        }
                    }).bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
            byte[] one = type == PING ? frame(PING, 0, 0, new byte[8]) : frame(SETTINGS, 0, 0, new byte[0]);
            byte[] batch = new byte[one.length * 1_000];
            for (int i = 0; i < 1_000; i++) {
                System.arraycopy(one, 0, batch, i * one.length, one.length);
            }
            long sent = 0;
            try (Socket client = new Socket()) {
                client.setReceiveBufferSize(4 * 1024);
                client.connect(listener.localAddress(), 5_000);
                OutputStream out = client.getOutputStream();
                out.write(preface());
                while (closed.getCount() > 0 && sent < 2_000_000) {
                    out.write(batch);
                    sent += 1_000;
                }
            } catch (IOException e) {
                // the server closed the connection under the client's writes
            }
            assertThat(closed.await(30, TimeUnit.SECONDS)).as("the server closed the connection").isTrue();
            assertThat(sent).as("frames sent before the close").isLessThan(2_000_000);
            listener.close().sync();
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }
}
