package dev.wisp.waypoint.proxy;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.node.proxy.StreamBytes;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link FlushFrames} between Netty's HTTP/1.1 server codec and {@link StreamBytes}, as the waypoint's
 * HTTP/1.1 tunnels have them: an answer of 1 KiB (which the codec writes as two buffers, head and body)
 * leaves as exactly one DATA frame holding the whole message; a large body is gathered, not lost; a
 * writer's promise completes with the merged write; a frame written after buffers goes after them; what
 * is held when the stream closes is released.
 */
class FlushFramesTest {
    final EmbeddedChannel stream = new EmbeddedChannel(new StreamBytes(), new FlushFrames(), new HttpServerCodec());

    /** The request the answer is for (the server codec pairs each answer with a request). */
    void request() {
        stream.writeInbound(new DefaultHttp2DataFrame(Unpooled.copiedBuffer("GET / HTTP/1.1\r\nhost: a\r\n\r\n",
                StandardCharsets.US_ASCII)));
        for (Object m; (m = stream.readInbound()) != null;) {
            io.netty.util.ReferenceCountUtil.release(m);
        }
    }

    static FullHttpResponse answer(int size) {
        FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK, Unpooled
                .wrappedBuffer("x".repeat(size).getBytes(StandardCharsets.US_ASCII)));
        HttpUtil.setContentLength(r, size);
        return r;
    }

    /** The DATA frames the stream wrote, their payloads as text (released). */
    List<String> frames() {
        List<String> out = new ArrayList<>();
        for (Object m; (m = stream.readOutbound()) != null;) {
            Http2DataFrame d = (Http2DataFrame) m;
            out.add(d.content().toString(StandardCharsets.US_ASCII) + (d.isEndStream() ? "<END>" : ""));
            d.release();
        }
        return out;
    }

    @Test
    void withoutItNettysCodecWritesAOneKibAnswerAsTwoDataFrames() {
        EmbeddedChannel plain = new EmbeddedChannel(new StreamBytes(), new HttpServerCodec());
        plain.writeInbound(new DefaultHttp2DataFrame(Unpooled.copiedBuffer("GET / HTTP/1.1\r\nhost: a\r\n\r\n",
                StandardCharsets.US_ASCII)));
        plain.writeAndFlush(answer(1024));
        assertThat(plain.outboundMessages()).hasSize(2);
        plain.finishAndReleaseAll();
    }

    @Test
    void aOneKibAnswerLeavesAsOneDataFrameWithTheWholeMessage() {
        request();
        stream.writeAndFlush(answer(1024), stream.voidPromise());
        List<String> frames = frames();
        assertThat(frames).hasSize(1);
        assertThat(frames.getFirst()).startsWith("HTTP/1.1 200 OK\r\ncontent-length: 1024\r\n\r\nxxx").endsWith(
                "x".repeat(1024)).hasSize("HTTP/1.1 200 OK\r\ncontent-length: 1024\r\n\r\n".length() + 1024);
        assertThat(stream.finishAndReleaseAll()).isFalse();
    }

    @Test
    void aLargeBodyIsGatheredWholeAndAWritersPromiseCompletesWithTheMergedWrite() {
        request();
        int size = FlushFrames.COPY_LIMIT * 3;
        ChannelFuture f = stream.writeAndFlush(answer(size));
        List<String> frames = frames();
        assertThat(frames).hasSize(1);
        assertThat(frames.getFirst()).endsWith("\r\n\r\n" + "x".repeat(size));
        assertThat(f.isSuccess()).isTrue();
    }

    @Test
    void aFrameWrittenAfterBuffersGoesAfterThem() {
        request();
        stream.write(answer(10), stream.voidPromise());
        stream.writeAndFlush(new DefaultHttp2DataFrame(true));
        assertThat(frames()).containsExactly("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nxxxxxxxxxx", "<END>");
    }

    @Test
    void whatIsHeldWhenTheStreamClosesIsReleasedAndItsWriterTold() {
        EmbeddedChannel bytes = new EmbeddedChannel(new StreamBytes(), new FlushFrames());
        ByteBuf held = Unpooled.copiedBuffer("unflushed", StandardCharsets.US_ASCII);
        ChannelFuture f = bytes.write(held);
        bytes.pipeline().remove(FlushFrames.class);
        assertThat(held.refCnt()).isZero();
        assertThat(f.isDone() && !f.isSuccess()).as("the unflushed write failed").isTrue();
        assertThat((Object) bytes.readOutbound()).isNull();
    }
}
