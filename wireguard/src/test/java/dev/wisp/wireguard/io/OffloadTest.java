package dev.wisp.wireguard.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** TSO splitting and GRO coalescing against independently checked headers and checksums. */
class OffloadTest {
    static final int MSS = 1000;

    /** An IPv4 packet 10.0.0.1 → 10.0.0.2 of {@code protocol} with {@code payload} zero bytes after the header. */
    static byte[] ipv4(int protocol, int payload) {
        byte[] p = new byte[20 + payload];
        p[0] = 0x45;
        p[2] = (byte) (p.length >>> 8);
        p[3] = (byte) p.length;
        p[4] = 0x12;
        p[5] = 0x34;
        p[8] = 64;
        p[9] = (byte) protocol;
        p[12] = 10;
        p[15] = 1;
        p[16] = 10;
        p[19] = 2;
        return p;
    }

    /** A TCP/IPv4 packet with {@code payload} bytes, sequence {@code seq}, flags ACK|extra. */
    static byte[] tcp4(int payload, long seq, int flags) {
        byte[] p = ipv4(6, 20 + payload);
        p[20] = 0x13;
        p[21] = (byte) 0x88;
        p[22] = 0x14;
        p[23] = 0x51;
        p[24] = (byte) (seq >>> 24);
        p[25] = (byte) (seq >>> 16);
        p[26] = (byte) (seq >>> 8);
        p[27] = (byte) seq;
        p[32] = 0x50;
        p[33] = (byte) (0x10 | flags);
        p[34] = (byte) 0xff;
        for (int i = 40; i < p.length; i++) {
            p[i] = (byte) (i * 7);
        }
        return p;
    }

    /** RFC 1071 the plain way, 16 bits at a time: the reference the fast sum must match. */
    static int referenceSum(byte[] b, int off, int len, int initial) {
        long sum = initial;
        for (int i = 0; i + 1 < len; i += 2) {
            sum += (b[off + i] & 0xff) << 8 | (b[off + i + 1] & 0xff);
        }
        if ((len & 1) != 0) {
            sum += (b[off + len - 1] & 0xff) << 8;
        }
        while ((sum >>> 16) != 0) {
            sum = (sum & 0xffff) + (sum >>> 16);
        }
        return (int) sum;
    }

    @Test
    void fastChecksumEqualsTheReferenceForAnyLengthAndOffset() {
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        byte[] b = new byte[3000];
        for (int n = 0; n < 2000; n++) {
            r.nextBytes(b);
            int off = r.nextInt(10);
            int len = r.nextInt(b.length - off);
            int init = r.nextInt(0x10000);
            assertThat(Offload.checksum(b, off, len, init)).as("len %d off %d", len, off)
                    .isEqualTo(referenceSum(b, off, len, init));
        }
        byte[] ones = new byte[1500];
        Arrays.fill(ones, (byte) 0xff);
        assertThat(Offload.checksum(ones, 0, ones.length, 0xffff)).isEqualTo(referenceSum(ones, 0, 1500, 0xffff));
    }

    static boolean ipChecksumOk(byte[] b, int off) {
        return referenceSum(b, off, 20, 0) == 0xffff;
    }

    static boolean tcpChecksumOk(byte[] b, int off, int len) {
        long pseudo = 0;
        for (int i = 12; i < 20; i += 2) {
            pseudo += (b[off + i] & 0xff) << 8 | (b[off + i + 1] & 0xff);
        }
        pseudo += 6 + (len - 20);
        while ((pseudo >>> 16) != 0) {
            pseudo = (pseudo & 0xffff) + (pseudo >>> 16);
        }
        return referenceSum(b, off + 20, len - 20, (int) pseudo) == 0xffff;
    }

    @Test
    void splitsATsoSuperSegmentIntoValidPackets() {
        byte[] big = tcp4(2500, 1_000_000, 0x08 | 0x01);
        byte[] in = new byte[10 + big.length];
        in[0] = Offload.F_NEEDS_CSUM;
        in[1] = Offload.GSO_TCPV4;
        in[4] = (byte) (MSS & 0xff);
        in[5] = (byte) (MSS >>> 8);
        in[6] = 20;
        in[8] = 16;
        System.arraycopy(big, 0, in, 10, big.length);
        List<byte[]> out = new ArrayList<>();
        byte[] buf = new byte[70_000];
        assertThat(Offload.split(in, 0, in.length, buf, 16, (b, o, l) -> out.add(Arrays.copyOfRange(b, o, o + l))))
                .isTrue();
        assertThat(out).hasSize(3);
        long seq = 1_000_000;
        for (int i = 0; i < 3; i++) {
            byte[] p = out.get(i);
            assertThat(p.length).isEqualTo(40 + (i < 2 ? MSS : 500));
            assertThat(((p[2] & 0xff) << 8) | (p[3] & 0xff)).isEqualTo(p.length);
            assertThat(ipChecksumOk(p, 0)).isTrue();
            assertThat(tcpChecksumOk(p, 0, p.length)).isTrue();
            long s = ((p[24] & 0xffL) << 24) | ((p[25] & 0xff) << 16) | ((p[26] & 0xff) << 8) | (p[27] & 0xff);
            assertThat(s).isEqualTo(seq + (long) i * MSS);
            assertThat(p[33] & 0x09).isEqualTo(i == 2 ? 0x09 : 0);
            assertThat(Arrays.copyOfRange(p, 40, p.length))
                    .isEqualTo(Arrays.copyOfRange(big, 40 + i * MSS, 40 + i * MSS + p.length - 40));
        }
    }

    @Test
    void completesAPartialChecksum() {
        byte[] p = tcp4(100, 5, 0);
        byte[] in = new byte[10 + p.length];
        in[0] = Offload.F_NEEDS_CSUM;
        in[6] = 20;
        in[8] = 16;
        System.arraycopy(p, 0, in, 10, p.length);
        // The kernel leaves the pseudo-header sum in the checksum field.
        long pseudo = 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 120;
        in[10 + 36] = (byte) (pseudo >>> 8);
        in[10 + 37] = (byte) pseudo;
        List<byte[]> out = new ArrayList<>();
        Offload.split(in, 0, in.length, new byte[2000], 0, (b, o, l) -> out.add(Arrays.copyOfRange(b, o, o + l)));
        assertThat(out).singleElement().satisfies(x -> assertThat(tcpChecksumOk(x, 0, x.length)).isTrue());
    }

    @Test
    void coalescesConsecutiveSegmentsIntoOneGsoFrameThatSplitsBackIntact() {
        byte[][] segs = {tcp4(MSS, 7000, 0), tcp4(MSS, 7000 + MSS, 0), tcp4(500, 7000 + 2 * MSS, 0x08)};
        for (byte[] s : segs) {
            int sum = ~Offload.checksum(s, 0, 20, 0) & 0xffff;
            s[10] = (byte) (sum >>> 8);
            s[11] = (byte) sum;
        }
        List<byte[]> frames = new ArrayList<>();
        Coalescer c = new Coalescer();
        for (byte[] s : segs) {
            c.add(s, 0, s.length, (b, o, l) -> frames.add(Arrays.copyOfRange(b, o, o + l)));
        }
        c.flush((b, o, l) -> frames.add(Arrays.copyOfRange(b, o, o + l)));
        assertThat(frames).hasSize(1);
        byte[] f = frames.getFirst();
        assertThat(f[1]).isEqualTo((byte) Offload.GSO_TCPV4);
        assertThat(f.length).isEqualTo(10 + 40 + 2500);
        assertThat(ipChecksumOk(f, 10)).isTrue();
        List<byte[]> back = new ArrayList<>();
        Offload.split(f, 0, f.length, new byte[70_000], 0, (b, o, l) -> back.add(Arrays.copyOfRange(b, o, o + l)));
        assertThat(back).hasSize(3);
        for (int i = 0; i < 3; i++) {
            assertThat(tcpChecksumOk(back.get(i), 0, back.get(i).length)).isTrue();
            assertThat(Arrays.copyOfRange(back.get(i), 24, 28)).isEqualTo(Arrays.copyOfRange(segs[i], 24, 28));
            assertThat(Arrays.copyOfRange(back.get(i), 40, back.get(i).length))
                    .isEqualTo(Arrays.copyOfRange(segs[i], 40, segs[i].length));
        }
        assertThat(back.get(2)[33] & 0x08).isEqualTo(0x08);
    }

    @Test
    void aGapInSequenceNumbersOrAnotherFlowStartsANewFrame() {
        List<byte[]> frames = new ArrayList<>();
        Coalescer c = new Coalescer();
        Coalescer.Writer w = (b, o, l) -> frames.add(Arrays.copyOfRange(b, o, o + l));
        c.add(tcp4(MSS, 0, 0), 0, 40 + MSS, w);
        c.add(tcp4(MSS, 2 * MSS, 0), 0, 40 + MSS, w);
        byte[] other = tcp4(MSS, 3 * MSS, 0);
        other[22] = 0x77;
        c.add(other, 0, other.length, w);
        byte[] udp = tcp4(10, 0, 0);
        udp[9] = 17;
        c.add(udp, 0, udp.length, w);
        c.flush(w);
        assertThat(frames).hasSize(4);
        assertThat(frames).allSatisfy(f -> assertThat(f[1]).isZero());
        assertThat(frames).allSatisfy(f -> assertThat(f[0]).isEqualTo((byte) 2));
    }
}
