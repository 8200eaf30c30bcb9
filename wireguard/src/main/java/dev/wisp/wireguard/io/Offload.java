package dev.wisp.wireguard.io;

/**
 * Undoes the kernel's TCP segmentation offload for packets read from a TUN opened with
 * {@code IFF_VNET_HDR}: each read starts with a 10-byte {@code virtio_net_hdr}; a GSO packet (one
 * TCP super-segment of up to 64 KiB) is cut into MSS-sized IP packets with their own IP and TCP
 * headers and checksums, and a packet whose checksum the kernel left partial
 * ({@code VIRTIO_NET_HDR_F_NEEDS_CSUM}) gets it completed. Pure and stateless.
 */
final class Offload {
    static final int VNET_HDR_LEN = 10;
    static final int F_NEEDS_CSUM = 1;
    static final int GSO_NONE = 0;
    static final int GSO_TCPV4 = 1;
    static final int GSO_TCPV6 = 4;

    /** Receives each finished packet: {@code buf[off, off+len)}. */
    interface Sink {
        void packet(byte[] buf, int off, int len);
    }

    private Offload() {}

    /**
     * Splits the read at {@code in[off, off+len)} (virtio header included) into plain IP packets,
     * each written to {@code out} at {@code outOff} and handed to {@code sink}. Returns false for a
     * read it cannot handle (dropped).
     */
    static boolean split(byte[] in, int off, int len, byte[] out, int outOff, Sink sink) {
        if (len <= VNET_HDR_LEN) {
            return false;
        }
        int flags = in[off] & 0xff;
        int gsoType = in[off + 1] & 0x7f;
        int gsoSize = u16le(in, off + 4);
        int csumStart = u16le(in, off + 6);
        int csumOffset = u16le(in, off + 8);
        int p = off + VNET_HDR_LEN;
        int plen = len - VNET_HDR_LEN;
        if (gsoType == GSO_NONE) {
            System.arraycopy(in, p, out, outOff, plen);
            if ((flags & F_NEEDS_CSUM) != 0) {
                if (csumStart + csumOffset + 2 > plen) {
                    return false;
                }
                int sum = checksum(out, outOff + csumStart, plen - csumStart, 0);
                putU16(out, outOff + csumStart + csumOffset, ~sum & 0xffff);
            }
            sink.packet(out, outOff, plen);
            return true;
        }
        if (gsoType != GSO_TCPV4 && gsoType != GSO_TCPV6 || gsoSize == 0) {
            return false;
        }
        boolean v4 = (in[p] & 0xf0) == 0x40;
        int ipHdr = v4 ? (in[p] & 0x0f) * 4 : 40;
        if (!v4 && (in[p + 6] & 0xff) != 6) {
            // IPv6 extension headers before TCP: not produced by the local stack for TSO.
            return false;
        }
        if (plen < ipHdr + 20) {
            return false;
        }
        int tcpHdr = ((in[p + ipHdr + 12] & 0xf0) >>> 4) * 4;
        int hdrs = ipHdr + tcpHdr;
        if (plen < hdrs) {
            return false;
        }
        int payload = plen - hdrs;
        long seq = u32be(in, p + ipHdr + 4);
        int id = v4 ? u16be(in, p + 4) : 0;
        int tcpFlags = in[p + ipHdr + 13] & 0xff;
        for (int done = 0, i = 0; done < payload; i++) {
            int seg = Math.min(gsoSize, payload - done);
            boolean last = done + seg == payload;
            System.arraycopy(in, p, out, outOff, hdrs);
            System.arraycopy(in, p + hdrs + done, out, outOff + hdrs, seg);
            int total = hdrs + seg;
            if (v4) {
                putU16(out, outOff + 2, total);
                putU16(out, outOff + 4, (id + i) & 0xffff);
                putU16(out, outOff + 10, 0);
                putU16(out, outOff + 10, ~checksum(out, outOff, ipHdr, 0) & 0xffff);
            } else {
                putU16(out, outOff + 4, total - 40);
            }
            int t = outOff + ipHdr;
            putU32(out, t + 4, (seq + done) & 0xffffffffL);
            int f = tcpFlags;
            if (!last) {
                f &= ~(0x01 | 0x08); // FIN and PSH only on the last segment
            }
            if (i > 0) {
                f &= ~0x80; // CWR only on the first
            }
            out[t + 13] = (byte) f;
            putU16(out, t + 16, 0);
            int pseudo = pseudoHeader(out, outOff, v4, tcpHdr + seg);
            putU16(out, t + 16, ~checksum(out, t, tcpHdr + seg, pseudo) & 0xffff);
            sink.packet(out, outOff, total);
            done += seg;
        }
        return true;
    }

    private static int pseudoHeader(byte[] b, int ip, boolean v4, int l4len) {
        long sum = 0;
        if (v4) {
            for (int i = 12; i < 20; i += 2) {
                sum += u16be(b, ip + i);
            }
        } else {
            for (int i = 8; i < 40; i += 2) {
                sum += u16be(b, ip + i);
            }
        }
        sum += 6 + l4len;
        return fold(sum);
    }

    private static final java.lang.invoke.VarHandle INT_BE = java.lang.invoke.MethodHandles
            .byteArrayViewVarHandle(int[].class, java.nio.ByteOrder.BIG_ENDIAN);

    /**
     * The ones'-complement sum (not inverted) of {@code b[off, off+len)} plus {@code initial}. Adds
     * 32-bit big-endian words into a 64-bit accumulator (the sum of 16-bit halves folds to the same
     * value), four bytes per step.
     */
    static int checksum(byte[] b, int off, int len, int initial) {
        long sum = initial;
        int i = off;
        int end4 = off + (len & ~3);
        for (; i < end4; i += 4) {
            sum += (int) INT_BE.get(b, i) & 0xffffffffL;
        }
        int end = off + len;
        if (end - i >= 2) {
            sum += (b[i] & 0xff) << 8 | (b[i + 1] & 0xff);
            i += 2;
        }
        if (i < end) {
            sum += (b[i] & 0xff) << 8;
        }
        return fold(sum);
    }

    private static int fold(long sum) {
        sum = (sum & 0xffffffffL) + (sum >>> 32);
        sum = (sum & 0xffffffffL) + (sum >>> 32);
        while ((sum >>> 16) != 0) {
            sum = (sum & 0xffff) + (sum >>> 16);
        }
        return (int) sum;
    }

    private static int u16le(byte[] b, int off) {
        return (b[off] & 0xff) | (b[off + 1] & 0xff) << 8;
    }

    private static int u16be(byte[] b, int off) {
        return (b[off] & 0xff) << 8 | (b[off + 1] & 0xff);
    }

    private static long u32be(byte[] b, int off) {
        return ((long) u16be(b, off) << 16) | u16be(b, off + 2);
    }

    private static void putU16(byte[] b, int off, int v) {
        b[off] = (byte) (v >>> 8);
        b[off + 1] = (byte) v;
    }

    private static void putU32(byte[] b, int off, long v) {
        putU16(b, off, (int) (v >>> 16));
        putU16(b, off + 2, (int) v);
    }
}
