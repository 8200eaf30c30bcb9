package dev.wisp.controlplane.model;

import java.net.InetAddress;
import java.net.UnknownHostException;

/** An IP prefix; a bare address is a full-length prefix. */
public record Cidr(InetAddress address, int length) {
    /**
     * Parses {@code 10.0.0.0/8}, {@code 10.1.2.3} or an IPv6 form; only literal addresses (never a
     * DNS lookup). An IPv4-mapped prefix {@code ::ffff:10.0.0.0/104} is the IPv4 prefix it maps
     * ({@code 10.0.0.0/8}), so that it matches IPv4 clients as it reads.
     *
     * @throws IllegalArgumentException with a message fit for the operator
     */
    public static Cidr parse(String text) {
        int slash = text.indexOf('/');
        String addr = slash < 0 ? text : text.substring(0, slash);
        InetAddress ip = Addresses.parseLiteral(addr);
        // An IPv4-mapped form (::ffff:a.b.c.d) parses as the IPv4 address; its prefix counts 96 more bits.
        int mappedBits = ip.getAddress().length == 4 && addr.indexOf(':') >= 0 ? 96 : 0;
        int max = ip.getAddress().length * 8 + mappedBits;
        int len = max;
        if (slash >= 0) {
            try {
                len = Integer.parseInt(text.substring(slash + 1));
            } catch (NumberFormatException e) {
                len = -1;
            }
            if (len < mappedBits || len > max) {
                throw new IllegalArgumentException("'" + text + "' has a prefix length outside " + mappedBits + ".."
                        + max + (mappedBits > 0 ? " (an IPv4-mapped prefix is at least 96 bits)" : ""));
            }
        }
        return new Cidr(ip, len - mappedBits);
    }

    /** Whether {@code ip} lies inside this prefix. */
    public boolean contains(InetAddress ip) {
        byte[] a = address.getAddress();
        byte[] b = ip.getAddress();
        if (a.length != b.length) {
            return false;
        }
        int full = length / 8;
        for (int i = 0; i < full; i++) {
            if (a[i] != b[i]) {
                return false;
            }
        }
        int rest = length % 8;
        if (rest == 0) {
            return true;
        }
        int mask = (0xff << (8 - rest)) & 0xff;
        return (a[full] & mask) == (b[full] & mask);
    }

    @Override
    public String toString() {
        return address.getHostAddress() + "/" + length;
    }

    /** Literal address parsing without name resolution. */
    public static final class Addresses {
        private Addresses() {}

        /** @throws IllegalArgumentException when {@code text} is not an IPv4 or IPv6 literal */
        public static InetAddress parseLiteral(String text) {
            if (text.isEmpty()
                    || !(text.indexOf(':') >= 0 || text.chars().allMatch(c -> c == '.' || Character.isDigit(c)))) {
                throw new IllegalArgumentException("'" + text + "' is not an IP address");
            }
            if (text.indexOf(':') < 0) {
                String[] parts = text.split("\\.", -1);
                if (parts.length != 4) {
                    throw new IllegalArgumentException("'" + text + "' is not an IP address");
                }
                for (String p : parts) {
                    if (p.isEmpty() || p.length() > 3 || Integer.parseInt(p) > 255) {
                        throw new IllegalArgumentException("'" + text + "' is not an IP address");
                    }
                }
            }
            try {
                return InetAddress.getByName(text);
            } catch (UnknownHostException e) {
                throw new IllegalArgumentException("'" + text + "' is not an IP address");
            }
        }
    }
}
