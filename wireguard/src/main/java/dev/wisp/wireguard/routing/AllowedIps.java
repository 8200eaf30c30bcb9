package dev.wisp.wireguard.routing;

import static java.util.Objects.requireNonNull;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * WireGuard's cryptokey routing table: IPv4 and IPv6 prefixes mapped to peers, looked up by longest
 * prefix match in both directions (which peer a packet goes to; whether a decrypted packet's source
 * belongs to the peer it came from). A binary trie per family. Thread-safe: writers take the
 * monitor; readers walk an immutable snapshot that each write replaces (copy-on-write of the
 * touched path), so the data path never locks.
 *
 * @param <T> the peer type (compared by identity)
 */
public final class AllowedIps<T> {
    private record Node<T>(Node<T> zero, Node<T> one, T value) {}

    private volatile Node<T> v4;
    private volatile Node<T> v6;

    /** A prefix and its owner, as listed for the UAPI. */
    public record Entry<T>(InetAddress address, int prefixLength, T value) {}

    /** Sets {@code prefix/length} to {@code value}, taking it from any other owner. */
    public void insert(InetAddress prefix, int length, T value) {
        set(prefix, length, requireNonNull(value, "value"));
    }

    /** Removes one prefix (whatever owns it). */
    public void remove(InetAddress prefix, int length) {
        set(prefix, length, null);
    }

    /** Points {@code prefix/length} at {@code value}; null clears it. */
    private synchronized void set(InetAddress prefix, int length, T value) {
        byte[] a = prefix.getAddress();
        checkLength(a, length);
        if (a.length == 4) {
            v4 = put(v4, a, 0, length, value);
        } else {
            v6 = put(v6, a, 0, length, value);
        }
    }

    /** Removes every prefix of {@code value}. */
    public synchronized void removeAll(T value) {
        v4 = prune(v4, value);
        v6 = prune(v6, value);
    }

    private static void checkLength(byte[] a, int length) {
        if (length < 0 || length > a.length * 8) {
            throw new IllegalArgumentException("prefix length " + length + " out of range for a " + a.length * 8
                    + "-bit address");
        }
    }

    private static boolean bit(byte[] a, int i) {
        return (a[i >>> 3] & (0x80 >>> (i & 7))) != 0;
    }

    private static <T> Node<T> put(Node<T> n, byte[] a, int depth, int length, T value) {
        if (depth == length) {
            Node<T> r = new Node<>(n == null ? null : n.zero, n == null ? null : n.one, value);
            return r.zero == null && r.one == null && r.value == null ? null : r;
        }
        Node<T> zero = n == null ? null : n.zero;
        Node<T> one = n == null ? null : n.one;
        if (bit(a, depth)) {
            one = put(one, a, depth + 1, length, value);
        } else {
            zero = put(zero, a, depth + 1, length, value);
        }
        T v = n == null ? null : n.value;
        return zero == null && one == null && v == null ? null : new Node<>(zero, one, v);
    }

    private static <T> Node<T> prune(Node<T> n, T value) {
        if (n == null) {
            return null;
        }
        Node<T> zero = prune(n.zero, value);
        Node<T> one = prune(n.one, value);
        T v = n.value == value ? null : n.value;
        if (zero == null && one == null && v == null) {
            return null;
        }
        return zero == n.zero && one == n.one && v == n.value ? n : new Node<>(zero, one, v);
    }

    /** Longest-prefix match of the IPv4 address at {@code buf[off, off+4)}, or null. */
    public T lookupV4(byte[] buf, int off) {
        return lookup(v4, buf, off, 32);
    }

    /** Longest-prefix match of the IPv6 address at {@code buf[off, off+16)}, or null. */
    public T lookupV6(byte[] buf, int off) {
        return lookup(v6, buf, off, 128);
    }

    /**
     * The owner of the destination address of the IP packet at {@code buf[off, off+len)} (where it
     * goes), or null, also when it is not an IPv4 or IPv6 packet.
     */
    public T lookupDestination(byte[] buf, int off, int len) {
        return lookupPacket(buf, off, len, 16, 24);
    }

    /**
     * The owner of the source address of the IP packet at {@code buf[off, off+len)} (whom it claims
     * to come from), or null, also when it is not an IPv4 or IPv6 packet.
     */
    public T lookupSource(byte[] buf, int off, int len) {
        return lookupPacket(buf, off, len, 12, 8);
    }

    /** The destination address of the IP packet at {@code buf[off, off+len)}, or null when it is not one. */
    public static InetAddress destinationOf(byte[] buf, int off, int len) {
        int version = len < 1 ? 0 : (buf[off] & 0xff) >>> 4;
        try {
            if (version == 4 && len >= 20) {
                return InetAddress.getByAddress(Arrays.copyOfRange(buf, off + 16, off + 20));
            }
            if (version == 6 && len >= 40) {
                return InetAddress.getByAddress(Arrays.copyOfRange(buf, off + 24, off + 40));
            }
        } catch (UnknownHostException e) {
            throw new IllegalStateException("4 or 16 bytes are always an address", e);
        }
        return null;
    }

    private T lookupPacket(byte[] buf, int off, int len, int v4At, int v6At) {
        int version = len < 1 ? 0 : (buf[off] & 0xff) >>> 4;
        if (version == 4 && len >= 20) {
            return lookupV4(buf, off + v4At);
        }
        if (version == 6 && len >= 40) {
            return lookupV6(buf, off + v6At);
        }
        return null;
    }

    public T lookup(InetAddress address) {
        byte[] a = address.getAddress();
        return a.length == 4 ? lookupV4(a, 0) : lookupV6(a, 0);
    }

    private static <T> T lookup(Node<T> n, byte[] buf, int off, int bits) {
        T best = null;
        int i = 0;
        while (n != null) {
            if (n.value != null) {
                best = n.value;
            }
            if (i == bits) {
                break;
            }
            boolean b = (buf[off + (i >>> 3)] & (0x80 >>> (i & 7))) != 0;
            n = b ? n.one : n.zero;
            i++;
        }
        return best;
    }

    /** Every prefix of {@code value}, IPv4 first. */
    public List<Entry<T>> entriesOf(T value) {
        List<Entry<T>> out = new ArrayList<>();
        collect(v4, new byte[4], 0, value, out);
        collect(v6, new byte[16], 0, value, out);
        return out;
    }

    private static <T> void collect(Node<T> n, byte[] a, int depth, T value, List<Entry<T>> out) {
        if (n == null) {
            return;
        }
        if (n.value == value) {
            try {
                out.add(new Entry<>(InetAddress.getByAddress(a.clone()), depth, value));
            } catch (UnknownHostException e) {
                throw new IllegalStateException(e);
            }
        }
        if (depth == a.length * 8) {
            return;
        }
        collect(n.zero, a, depth + 1, value, out);
        a[depth >>> 3] |= (byte) (0x80 >>> (depth & 7));
        collect(n.one, a, depth + 1, value, out);
        a[depth >>> 3] &= (byte) ~(0x80 >>> (depth & 7));
    }
}
