package dev.wisp.wireguard.io;

import java.util.Arrays;

/**
 * Generic receive offload for a TUN opened with {@code IFF_VNET_HDR}: consecutive TCP/IPv4
 * segments of one flow (same addresses, ports, ack, window, options; next sequence number; only
 * the last may be shorter or carry PSH) are merged into one super-packet written with a
 * {@code virtio_net_hdr} asking for GSO, so the receiving stack handles up to 64 KiB per traversal
 * instead of one MTU. Anything else is written alone. Owned by one thread (the UDP receiver);
 * {@link #flush} after each received batch keeps latency bounded.
 */
final class Coalescer {
    /** Writes one TUN frame (vnet header included). */
    interface Writer {
        void write(byte[] buf, int off, int len);
    }

    private static final int HDR = Offload.VNET_HDR_LEN;
    private static final int MAX_IP = 65_535;
    private static final int MAX_SEGMENTS = 64;
    private static final byte F_DATA_VALID = 2;

    private final byte[] buf = new byte[HDR + MAX_IP];
    /** IP packet bytes held after the header; 0 when empty. */
    private int len;
    private int segments;
    private int gsoSize;
    private int lastPayload;
    private int hdrLen;
    private long nextSeq;
    private boolean closed;

    /** Adds the IP packet {@code p[off, off+n)}; may write earlier packets first. */
    void add(byte[] p, int off, int n, Writer w) {
        if (len > 0 && canMerge(p, off, n)) {
            int payload = n - hdrLen;
            System.arraycopy(p, off + hdrLen, buf, HDR + len, payload);
            len += payload;
            segments++;
            lastPayload = payload;
            nextSeq = (nextSeq + payload) & 0xffffffffL;
            if ((p[off + 33] & 0x08) != 0) {
                buf[HDR + 33] |= 0x08;
                closed = true;
            }
            return;
        }
        flush(w);
        System.arraycopy(p, off, buf, HDR, n);
        len = n;
        segments = 1;
        int tcpHdr = startable(p, off, n);
        if (tcpHdr < 0) {
            flush(w);
            return;
        }
        hdrLen = 20 + tcpHdr;
        gsoSize = n - hdrLen;
        lastPayload = gsoSize;
        nextSeq = (u32(p, off + 24) + gsoSize) & 0xffffffffL;
        closed = (p[off + 33] & 0x08) != 0;
    }

    /** TCP header length when the packet may start a merge, else -1. */
    private static int startable(byte[] p, int off, int n) {
        if (n < 40 || p[off] != 0x45 || p[off + 9] != 6) {
            return -1;
        }
        if ((p[off + 6] & 0x3f) != 0 || p[off + 7] != 0) {
            return -1; // fragment
        }
        int flags = p[off + 33] & 0xff;
        if (flags != 0x10 && flags != 0x18) {
            return -1;
        }
        int tcpHdr = ((p[off + 32] & 0xf0) >>> 4) * 4;
        if (tcpHdr < 20 || n <= 20 + tcpHdr) {
            return -1;
        }
        return tcpHdr;
    }

    private boolean canMerge(byte[] p, int off, int n) {
        if (closed || segments >= MAX_SEGMENTS || lastPayload != gsoSize) {
            return false;
        }
        int tcpHdr = startable(p, off, n);
        if (tcpHdr < 0 || 20 + tcpHdr != hdrLen) {
            return false;
        }
        int payload = n - hdrLen;
        if (payload > gsoSize || len + payload > MAX_IP || u32(p, off + 24) != nextSeq) {
            return false;
        }
        int b = HDR;
        // TOS, DF, TTL, addresses; ports; ack; window; options must all match.
        return p[off + 1] == buf[b + 1] && p[off + 6] == buf[b + 6] && p[off + 8] == buf[b + 8]
                && Arrays.equals(p, off + 12, off + 24, buf, b + 12, b + 24)
                && Arrays.equals(p, off + 28, off + 32, buf, b + 28, b + 32)
                && Arrays.equals(p, off + 34, off + 36, buf, b + 34, b + 36)
                && Arrays.equals(p, off + 40, off + hdrLen, buf, b + 40, b + hdrLen);
    }

    /** Writes what is held. */
    void flush(Writer w) {
        if (len == 0) {
            return;
        }
        Arrays.fill(buf, 0, HDR, (byte) 0);
        if (segments == 1) {
            buf[0] = F_DATA_VALID;
        } else {
            int b = HDR;
            buf[b + 2] = (byte) (len >>> 8);
            buf[b + 3] = (byte) len;
            buf[b + 10] = 0;
            buf[b + 11] = 0;
            int ipSum = ~Offload.checksum(buf, b, 20, 0) & 0xffff;
            buf[b + 10] = (byte) (ipSum >>> 8);
            buf[b + 11] = (byte) ipSum;
            // Partial checksum: the pseudo-header sum, which the stack completes or trusts.
            long pseudo = 6 + (len - 20);
            for (int i = 12; i < 20; i += 2) {
                pseudo += (buf[b + i] & 0xff) << 8 | (buf[b + i + 1] & 0xff);
            }
            while ((pseudo >>> 16) != 0) {
                pseudo = (pseudo & 0xffff) + (pseudo >>> 16);
            }
            buf[b + 36] = (byte) (pseudo >>> 8);
            buf[b + 37] = (byte) pseudo;
            buf[0] = Offload.F_NEEDS_CSUM;
            buf[1] = Offload.GSO_TCPV4;
            buf[2] = (byte) hdrLen;
            buf[3] = (byte) (hdrLen >>> 8);
            buf[4] = (byte) gsoSize;
            buf[5] = (byte) (gsoSize >>> 8);
            buf[6] = 20;
            buf[8] = 16;
        }
        w.write(buf, 0, HDR + len);
        len = 0;
        segments = 0;
    }

    private static long u32(byte[] b, int off) {
        return ((b[off] & 0xffL) << 24) | ((b[off + 1] & 0xff) << 16) | ((b[off + 2] & 0xff) << 8)
                | (b[off + 3] & 0xff);
    }
}
