package dev.wisp.base;

import static java.util.Objects.requireNonNull;

import java.net.InetAddress;
import java.net.InetSocketAddress;

/**
 * How Wisp writes an address wherever a person or a program reads it (flow records, access logs,
 * {@code /flows}, WireGuard's UAPI): dotted IPv4, IPv6 in RFC 5952's form ({@code fd00:223:1::10},
 * lower case, the longest run of two or more zero groups folded into {@code ::}, the first of equal
 * runs), never Java's full form ({@code fd00:223:1:0:0:0:0:10}); an IPv4-mapped IPv6 address
 * (which Java's parsers turn into IPv4 already, but {@code Inet6Address.getByAddress} keeps) as
 * {@code ::ffff:192.0.2.1} (RFC 5952 section 5). The one formatter, so that a reader can grep one
 * log for an address another wrote.
 */
public final class IpText {
    private IpText() {}

    /** {@code address} without a scope: {@code 10.0.0.1}, {@code fd00::1}. */
    public static String of(InetAddress address) {
        requireNonNull(address, "address");
        byte[] a = address.getAddress();
        if (a.length == 4) {
            return address.getHostAddress();
        }
        int[] g = new int[8];
        if (isIpv4Mapped(a)) {
            return "::ffff:" + (a[12] & 0xff) + "." + (a[13] & 0xff) + "." + (a[14] & 0xff) + "." + (a[15] & 0xff);
        }
        for (int i = 0; i < 8; i++) {
            g[i] = (a[2 * i] & 0xff) << 8 | (a[2 * i + 1] & 0xff);
        }
        // RFC 5952 4.2: the longest run of at least two zero groups, the first one on a tie.
        int bestStart = -1;
        int bestLen = 1;
        for (int i = 0; i < 8;) {
            if (g[i] != 0) {
                i++;
                continue;
            }
            int j = i;
            while (j < 8 && g[j] == 0) {
                j++;
            }
            if (j - i > bestLen) {
                bestStart = i;
                bestLen = j - i;
            }
            i = j;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                b.append("::");
                i += bestLen - 1;
                continue;
            }
            if (b.length() > 0 && b.charAt(b.length() - 1) != ':') {
                b.append(':');
            }
            b.append(Integer.toHexString(g[i]));
        }
        return b.toString();
    }

    /** Whether {@code a} (an address's bytes) is IPv4-mapped IPv6, {@code ::ffff:a.b.c.d}. */
    public static boolean isIpv4Mapped(byte[] a) {
        if (a.length != 16) {
            return false;
        }
        for (int i = 0; i < 10; i++) {
            if (a[i] != 0) {
                return false;
            }
        }
        return a[10] == (byte) 0xff && a[11] == (byte) 0xff;
    }

    /** {@code 10.0.0.1:80}, {@code [fd00::1]:80} (RFC 5952 section 6); an unresolved address by its host name. */
    public static String hostPort(InetSocketAddress address) {
        requireNonNull(address, "address");
        return address.getAddress() == null
                ? address.getHostString() + ":" + address.getPort()
                : hostPort(address.getAddress(), address.getPort());
    }

    /** {@code 10.0.0.1:80}, {@code [fd00::1]:80}. */
    public static String hostPort(InetAddress address, int port) {
        String host = of(address);
        return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
    }
}
