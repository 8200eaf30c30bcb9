package dev.wisp.node.proxy;

import dev.wisp.base.IpText;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2Settings;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Optional;
import java.util.Set;

/** HBONE's protocol constants (ztunnel's values) and the parsing both ends share. */
final class Hbone {
    static final int STREAM_WINDOW = 4 * 1024 * 1024;
    static final int CONNECTION_WINDOW = 16 * 1024 * 1024;
    static final int MAX_FRAME = 1024 * 1024;
    static final int SERVER_MAX_STREAMS = 200;
    static final int CLIENT_STREAMS_PER_CONNECTION = 100;
    /**
     * Write-buffer water marks of relayed channels and of HBONE connections. Netty's default
     * (32/64 KiB) is below one TCP read (up to 64 KiB): every read made the peer unwritable, stopped
     * reading and cost an event-loop round trip to resume. Memory per relay stays bounded by these
     * marks plus one stream window.
     */
    static final WriteBufferWaterMark WATER_MARK = new WriteBufferWaterMark(256 * 1024, 1024 * 1024);
    /** Largest header block accepted: CONNECT carries a handful of short headers. */
    static final int MAX_HEADER_LIST = 16 * 1024;

    private Hbone() {}

    /**
     * Finishes an HBONE connection's frame codec, just added to its pipeline: opens the connection
     * receive window to {@link #CONNECTION_WINDOW}, and assembles frames without copying. TLS hands
     * the codec one record (at most 16 KiB) at a time while a DATA frame may be up to
     * {@link #MAX_FRAME}: Netty's default cumulator copies every record into one growing buffer
     * (re-allocating and copying again as it grows), which the profile showed as the largest
     * allocation cost on the relay's byte path. The composite cumulator keeps the records as
     * components instead; the DATA payload relayed to a TCP socket is then written with one
     * gathering write.
     */
    static void finish(Http2FrameCodec codec) throws Http2Exception {
        codec.setCumulator(ByteToMessageDecoder.COMPOSITE_CUMULATOR);
        codec.connection().local().flowController().incrementWindowSize(codec.connection().connectionStream(),
                CONNECTION_WINDOW - 65_535);
    }

    static Http2Settings serverSettings() {
        return Http2Settings.defaultSettings().maxConcurrentStreams(SERVER_MAX_STREAMS)
                .initialWindowSize(STREAM_WINDOW).maxFrameSize(MAX_FRAME).maxHeaderListSize(MAX_HEADER_LIST);
    }

    static Http2Settings clientSettings() {
        // A client never accepts pushed or server-initiated streams.
        return Http2Settings.defaultSettings().maxConcurrentStreams(0).pushEnabled(false)
                .initialWindowSize(STREAM_WINDOW).maxFrameSize(MAX_FRAME).maxHeaderListSize(MAX_HEADER_LIST);
    }

    /**
     * Why a stream's first HEADERS is not an HBONE CONNECT to a literal {@code ip:port} (method,
     * END_STREAM, authority), or empty when it is one; both HBONE servers (agent and waypoint) refuse
     * the same requests.
     */
    static Optional<Outcome.BadRequest> notConnect(CharSequence method, boolean endStream, CharSequence authority) {
        if (!"CONNECT".contentEquals(method == null ? "" : method)) {
            return Optional.of(new Outcome.BadRequest("method " + method + " is not CONNECT"));
        }
        if (endStream) {
            return Optional.of(new Outcome.BadRequest("CONNECT with END_STREAM"));
        }
        if (parseAuthority(authority).isEmpty()) {
            return Optional.of(new Outcome.BadRequest("authority '" + authority + "' is not ip:port"));
        }
        return Optional.empty();
    }

    /**
     * {@code ip:port} or {@code [ipv6]:port} with a literal address and a port in 1-65535; anything
     * else (host names, missing port, junk) is empty. Never resolves names.
     */
    static Optional<InetSocketAddress> parseAuthority(CharSequence authority) {
        if (authority == null || authority.length() == 0 || authority.length() > 64) {
            return Optional.empty();
        }
        String s = authority.toString();
        int colon = s.lastIndexOf(':');
        if (colon <= 0 || colon == s.length() - 1) {
            return Optional.empty();
        }
        String host = s.substring(0, colon);
        String portText = s.substring(colon + 1);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
            if (host.indexOf(':') < 0) {
                return Optional.empty();
            }
        } else if (host.indexOf(':') >= 0) {
            return Optional.empty();
        }
        if (!portText.chars().allMatch(Character::isDigit) || portText.length() > 5) {
            return Optional.empty();
        }
        int port = Integer.parseInt(portText);
        if (port < 1 || port > 65535) {
            return Optional.empty();
        }
        return literal(host).map(a -> new InetSocketAddress(a, port));
    }

    /** The address of an IPv4 or IPv6 literal, without any name lookup. */
    static Optional<InetAddress> literal(String host) {
        boolean v4 = host.chars().allMatch(c -> Character.isDigit(c) || c == '.') && host.indexOf('.') > 0;
        boolean v6 = host.indexOf(':') >= 0
                && host.chars().allMatch(c -> Character.digit(c, 16) >= 0 || c == ':' || c == '.');
        if (!v4 && !v6) {
            return Optional.empty();
        }
        try {
            return Optional.of(InetAddress.ofLiteral(host));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }

    /** {@code ip:port}, with brackets for IPv6 (in RFC 5952's form, as the access log writes it). */
    static String authority(InetSocketAddress a) {
        return IpText.hostPort(a);
    }

    /** Whether {@code port} is one of the agent's own listeners: never a destination (loops). */
    static boolean meshPort(int port, Set<Integer> agentPorts) {
        return agentPorts.contains(port);
    }
}
