package dev.wisp.waypoint.proxy;

import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import java.net.Inet6Address;
import java.net.InetSocketAddress;

/**
 * The {@code Host} a request is routed and sent upstream with when its client gave none: an HTTP/2 request
 * without {@code :authority} (which RFC 9113 allows), or an HTTP/1.0 one without {@code Host}. An HTTP/1.1
 * endpoint needs one (RFC 9112 section 3.2: a server answers 400 to a request without it), so the waypoint
 * names the service the tunnel was opened to: the first name among its virtual host's domains (the control
 * plane lists the service's FQDN first), with the tunnel's port unless it is 80; else, for a virtual host
 * that lists only addresses, the tunnel's target, an IPv6 address in brackets.
 */
final class Authorities {
    private Authorities() {}

    static String of(VirtualHost host, InetSocketAddress target) {
        int port = target.getPort();
        for (String d : host.getDomainsList()) {
            if (isName(d)) {
                return port == 80 ? d : d + ":" + port;
            }
        }
        String ip = target.getAddress().getHostAddress();
        return (target.getAddress() instanceof Inet6Address ? "[" + ip + "]" : ip) + ":" + port;
    }

    /** A DNS name without port or wildcard: not an address, not {@code *}, not {@code name:port}. */
    private static boolean isName(String d) {
        if (d.isEmpty() || d.indexOf(':') >= 0 || d.indexOf('*') >= 0 || d.startsWith("[")) {
            return false;
        }
        for (int i = 0; i < d.length(); i++) {
            char ch = d.charAt(i);
            if (ch != '.' && !Character.isDigit(ch)) {
                return true; // an IPv4 literal is digits and dots only
            }
        }
        return false;
    }
}
