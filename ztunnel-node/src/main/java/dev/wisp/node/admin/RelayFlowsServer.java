package dev.wisp.node.admin;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.tls.SpiffeTls;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.timeout.ReadTimeoutHandler;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * The agent's {@code GET /flows} for the control plane's flow relay: HTTP/1.1 over mutual TLS on its
 * own event loop thread ({@code wisp-flows}). The TLS context requires a client SVID of the mesh's
 * bundle; of the verified peers only {@code relay} is answered (403 otherwise). Netty rather than
 * the JDK's HTTPS server, which looks up the client's host name (reverse DNS) before its handshake:
 * seconds per connection where no resolver answers.
 *
 * <p>Each request is answered on the event loop from the in-memory flow log (short); requests
 * are aggregated up to 8 KiB; an idle connection is closed after 60 s. {@link #close} closes the
 * listener and its connections.
 */
final class RelayFlowsServer implements AutoCloseable {
    private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1,
            (java.util.concurrent.ThreadFactory) r -> new Thread(r, "wisp-flows"),
            NioIoHandler.newFactory());
    private final Channel listener;

    private RelayFlowsServer(SslContext tls, InetSocketAddress address, SpiffeId relay,
            Function<Map<String, String>, String> flows) throws IOException {
        ServerBootstrap b = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new ReadTimeoutHandler(60, TimeUnit.SECONDS), tls.newHandler(ch.alloc()),
                                new HttpServerCodec(), new HttpObjectAggregator(8192), new Answer(relay, flows));
                    }
                });
        try {
            listener = b.bind(address).sync().channel();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            throw new IOException("interrupted binding the flows listener on " + address, e);
        } catch (RuntimeException e) {
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
            throw new IOException("cannot listen for the flow relay on " + address + ": " + e.getMessage()
                    + " (is another process using the port? --flows-port changes it)", e);
        }
    }

    static RelayFlowsServer start(SslContext tls, InetSocketAddress address, SpiffeId relay,
            Function<Map<String, String>, String> flows) throws IOException {
        return new RelayFlowsServer(tls, address, relay, flows);
    }

    InetSocketAddress address() {
        return (InetSocketAddress) listener.localAddress();
    }

    /** Answers one request; owns nothing beyond the request it is handed (released by its superclass). */
    private static final class Answer extends SimpleChannelInboundHandler<FullHttpRequest> {
        private final SpiffeId relay;
        private final Function<Map<String, String>, String> flows;

        Answer(SpiffeId relay, Function<Map<String, String>, String> flows) {
            this.relay = relay;
            this.flows = flows;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
            HttpResponseStatus status;
            String body;
            QueryStringDecoder uri = new QueryStringDecoder(req.uri());
            try {
                SpiffeId peer = SpiffeTls.peerId(ctx.pipeline().get(SslHandler.class).engine().getSession());
                if (!peer.equals(relay)) {
                    status = HttpResponseStatus.FORBIDDEN;
                    body = peer + " may not read this node's flows; only " + relay + " may\n";
                } else if (!uri.path().equals("/flows")) {
                    status = HttpResponseStatus.NOT_FOUND;
                    body = "no such endpoint: " + uri.path() + "\n";
                } else if (!req.method().equals(HttpMethod.GET)) {
                    status = HttpResponseStatus.METHOD_NOT_ALLOWED;
                    body = "use GET /flows\n";
                } else {
                    Map<String, String> query = new LinkedHashMap<>();
                    uri.parameters().forEach((k, v) -> query.put(k, v.getLast()));
                    status = HttpResponseStatus.OK;
                    body = flows.apply(query);
                }
            } catch (SSLPeerUnverifiedException e) {
                status = HttpResponseStatus.FORBIDDEN;
                body = "no verified client identity: " + e.getMessage() + "\n";
            } catch (IllegalArgumentException e) {
                status = HttpResponseStatus.BAD_REQUEST;
                body = e.getMessage() + "\n";
            }
            FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.copiedBuffer(body,
                    StandardCharsets.UTF_8));
            r.headers().set(HttpHeaderNames.CONTENT_TYPE, status == HttpResponseStatus.OK
                    ? "application/json"
                    : "text/plain; charset=utf-8");
            HttpUtil.setContentLength(r, r.content().readableBytes());
            boolean keepAlive = HttpUtil.isKeepAlive(req) && status == HttpResponseStatus.OK;
            HttpUtil.setKeepAlive(r, keepAlive);
            var written = ctx.writeAndFlush(r);
            if (!keepAlive) {
                written.addListener(ChannelFutureListener.CLOSE);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // A failed handshake or a read time-out: nothing to answer.
            ctx.close();
        }
    }

    @Override
    public void close() {
        listener.close();
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS);
    }
}
