package dev.wisp.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.IpText;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** An IP prefix such as {@code 10.0.0.0/24} or {@code fd00::/64}, host bits kept as given. */
public record Prefix(InetAddress address, int length) {
    public Prefix {
        requireNonNull(address, "address");
        int max = address.getAddress().length * 8;
        if (length < 0 || length > max) {
            throw new IllegalArgumentException("prefix length " + length + " is out of 0.." + max);
        }
    }

    /** Parses {@code addr/len} or a bare address (a host prefix); numeric addresses only. */
    public static Prefix parse(String text) {
        requireNonNull(text, "text");
        String s = text.trim();
        int slash = s.indexOf('/');
        String addr = slash < 0 ? s : s.substring(0, slash);
        if (addr.isEmpty()
                || !(addr.indexOf(':') >= 0 || addr.chars().allMatch(c -> c == '.' || Character.isDigit(c)))) {
            throw new IllegalArgumentException("'" + text + "' is not a numeric IP prefix");
        }
        InetAddress a;
        try {
            a = InetAddress.getByName(addr);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("'" + text + "' is not a numeric IP prefix");
        }
        int len;
        try {
            len = slash < 0 ? a.getAddress().length * 8 : Integer.parseInt(s.substring(slash + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' has no valid prefix length");
        }
        return new Prefix(a, len);
    }

    @Override
    public String toString() {
        return format(address) + "/" + length;
    }

    /** An address as {@code wg} prints it: {@link IpText#of} (RFC 5952's form for IPv6). */
    public static String format(InetAddress address) {
        return IpText.of(address);
    }
}
