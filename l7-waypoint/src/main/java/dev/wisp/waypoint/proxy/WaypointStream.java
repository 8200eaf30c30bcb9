package dev.wisp.waypoint.proxy;

import dev.wisp.node.proxy.StreamBytes;
import dev.wisp.node.proxy.HboneServer;
import dev.wisp.node.proxy.Outcome;
import dev.wisp.spiffe.SpiffeId;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One HBONE CONNECT stream to the waypoint: the CONNECT must be one the agent's server would take
 * ({@link HboneServer#connectRefusal}: 400 otherwise), and its target (the original destination, a
 * service's cluster IP and port) must be served by a route configuration the waypoint holds (a
 * virtual host listing {@code ip:port}), else 503, as the waypoint has no way to decide it. Then 200,
 * and the stream carries the application's HTTP/1.1 or HTTP/2: the pipeline becomes {@link StreamBytes}
 * and {@link InnerProtocol}, which tells them apart and sets up an {@link Exchange} per tunnel
 * (HTTP/1.1) or per HTTP/2 stream, which routes each request.
 *
 * <p>The virtual host is looked up again for every request, so a route change applies to open tunnels.
 * One per stream, on its event loop.
 */
final class WaypointStream extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(WaypointStream.class);
    private final Routing routing;

    WaypointStream(Routing routing) {
        this.routing = routing;
    }

    @Override
    public void channelRead(ChannelHandlerContext c, Object msg) {
        if (!(msg instanceof Http2HeadersFrame first)) {
            ReferenceCountUtil.release(msg);
            answer(c, 400, "stream began without HEADERS", true);
            return;
        }
        Optional<Outcome.BadRequest> bad = HboneServer.connectRefusal(first);
        if (bad.isPresent()) {
            answer(c, 400, bad.get().reason(), true);
            return;
        }
        InetSocketAddress target = HboneServer.connectTarget(first);
        Optional<VirtualHost> host = routing.config().get().virtualHost(target);
        Http2StreamChannel stream = (Http2StreamChannel) c.channel();
        Optional<SpiffeId> peer = HboneServer.peerId(stream);
        if (host.isEmpty()) {
            answer(c, 503, "no route configuration serves " + target, true);
            return;
        }
        LOG.debug("HBONE CONNECT {} from {} ({}): HTTP on virtual host {}", target, stream.parent()
                .remoteAddress(), peer.map(SpiffeId::toString).orElse("-"), host.get().getName());
        answer(c, 200, "tunnel up", false);
        c.pipeline().addLast(new StreamBytes(), new InnerProtocol(h2 -> new Exchange(target, peer, routing, h2)));
        c.pipeline().remove(this);
    }

    private static void answer(ChannelHandlerContext c, int status, String reason, boolean end) {
        if (end) {
            LOG.debug("HBONE stream from {} answered {}: {}", c.channel().parent().remoteAddress(), status, reason);
        }
        var f = c.writeAndFlush(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status(String.valueOf(status)),
                end));
        if (end) {
            f.addListener(ChannelFutureListener.CLOSE);
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
        LOG.debug("HBONE stream to the waypoint failed: {}", cause.toString());
        c.close();
    }
}
