package dev.wisp.wireguard.netlink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.linux.Errno;
import dev.wisp.linux.NetlinkException;
import dev.wisp.linux.NetlinkMessage;
import dev.wisp.linux.NetlinkWriter;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@code WG_CMD_GET_DEVICE} answers built here to the uapi layout of {@code <linux/wireguard.h>}
 * (attribute numbers written as literals from the header, not the decoder's constants), as the
 * kernel splits them: the device's attributes in the first message only, peers over several
 * messages, one peer's allowed IPs continued in the next message under its repeated public key.
 * Then hostile values and 20,000 seeded mutations that may only decode or fail as netlink errors.
 */
class DeviceDumpTest {
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final int FAMILY = 0x1b;
    static final Key PRIVATE = Key.of(range(0x01));
    static final Key PEER1 = Key.of(range(0x40));
    static final Key PEER2 = Key.of(range(0x80));
    static final Key PEER3 = Key.of(range(0xc0));
    static final Instant HANDSHAKE = Instant.ofEpochSecond(1_796_000_000L, 123_000_000);

    static byte[] range(int from) {
        byte[] b = new byte[32];
        for (int i = 0; i < 32; i++) {
            b[i] = (byte) (from + i);
        }
        return b;
    }

    /** One dump message: {@code NLM_F_MULTI}, command 0 (WG_CMD_GET_DEVICE), version 1. */
    static NetlinkWriter part() {
        return NetlinkWriter.genl(LE, FAMILY, NetlinkWriter.NLM_F_MULTI, 9, 0, 1);
    }

    static NetlinkMessage message(NetlinkWriter w) {
        byte[] all = w.finish();
        ByteBuffer b = ByteBuffer.wrap(all).order(LE);
        return new NetlinkMessage(b.getShort(4), b.getShort(6), b.getInt(8), Arrays.copyOfRange(all, 16, all.length));
    }

    static byte[] sockaddrIn(String ip, int port) {
        ByteBuffer b = ByteBuffer.allocate(16).order(LE).putShort((short) 2);
        b.order(ByteOrder.BIG_ENDIAN).putShort((short) port).put(InetAddress.ofLiteral(ip).getAddress());
        return b.array();
    }

    static byte[] sockaddrIn6(String ip, int port) {
        ByteBuffer b = ByteBuffer.allocate(28).order(LE).putShort((short) 10);
        b.order(ByteOrder.BIG_ENDIAN).putShort((short) port).putInt(0).put(InetAddress.ofLiteral(ip).getAddress());
        return b.array();
    }

    static byte[] timespec(Instant t) {
        return ByteBuffer.allocate(16).order(LE).putLong(t.getEpochSecond()).putLong(t.getNano()).array();
    }

    static byte[] u64(long v) {
        return ByteBuffer.allocate(8).order(LE).putLong(v).array();
    }

    /** wgallowedip: 1 family (u16), 2 address, 3 mask (u8). */
    static void allowed(NetlinkWriter w, String prefix) {
        Prefix p = Prefix.parse(prefix);
        w.begin(0).u16(1, p.address().getAddress().length == 4 ? 2 : 10).bytes(2, p.address().getAddress()).u8(3, p
                .length()).end();
    }

    /**
     * Three messages: the device (ifindex 1, ifname 2, private key 3, public key 4, listen port 6,
     * fwmark 7) and peer 1 whole plus the start of peer 2; peer 2's key again with the rest of its
     * allowed IPs; peer 3.
     */
    static List<NetlinkMessage> dump() {
        NetlinkWriter m1 = part().u16(6, 51820).u32(7, 0x20).u32(1, 7).string(2, "wisp-kwg0").bytes(3, PRIVATE.bytes())
                .bytes(4, PRIVATE.publicKey().bytes());
        m1.begin(8);
        // peer: 1 public key, 2 preshared key, 6 last handshake, 5 keepalive, 8 tx, 7 rx, 10 protocol, 4 endpoint, 9 allowed IPs
        m1.begin(0).bytes(1, PEER1.bytes()).bytes(2, new byte[32]).bytes(6, timespec(HANDSHAKE)).u16(5, 25).bytes(8,
                u64(1_000)).bytes(7, u64(2_000)).u32(10, 1).bytes(4, sockaddrIn("192.0.2.1", 51820));
        m1.begin(9);
        allowed(m1, "10.1.0.0/16");
        m1.end().end();
        m1.begin(0).bytes(1, PEER2.bytes()).bytes(2, range(0x11)).bytes(6, new byte[16]).u16(5, 0).bytes(8, u64(0))
                .bytes(7, u64(0)).u32(10, 1).bytes(4, sockaddrIn6("2001:db8::2", 51821));
        m1.begin(9);
        allowed(m1, "10.2.0.0/16");
        allowed(m1, "fd00:2::/64");
        m1.end().end().end();
        NetlinkWriter m2 = part().begin(8).begin(0).bytes(1, PEER2.bytes()).begin(9);
        allowed(m2, "10.2.1.0/24");
        allowed(m2, "fd00:2:1::/64");
        m2.end().end().end();
        NetlinkWriter m3 = part().begin(8).begin(0).bytes(1, PEER3.bytes()).bytes(8, u64(5)).bytes(7, u64(6)).end()
                .end();
        return List.of(message(m1), message(m2), message(m3));
    }

    @Test
    void peersSplitAcrossMessagesAreOnePeerEach() throws Exception {
        DeviceDump.State s = DeviceDump.decode(dump(), FAMILY, LE);
        assertThat(s.ifindex()).isEqualTo(7);
        assertThat(s.ifname()).isEqualTo("wisp-kwg0");
        assertThat(s.privateKey()).isEqualTo(PRIVATE);
        assertThat(s.publicKey()).isEqualTo(PRIVATE.publicKey());
        assertThat(s.listenPort()).isEqualTo(51820);
        assertThat(s.fwmark()).isEqualTo(0x20);
        assertThat(s.peers()).extracting(PeerStatus::publicKey).containsExactly(PEER1, PEER2, PEER3);
        PeerStatus p1 = s.peers().get(0);
        assertThat(p1).isEqualTo(new PeerStatus(PEER1, false, new InetSocketAddress(InetAddress.ofLiteral(
                "192.0.2.1"), 51820), HANDSHAKE, 1_000, 2_000, Duration.ofSeconds(25), List.of(
                        Prefix.parse(
                                "10.1.0.0/16"))));
        PeerStatus p2 = s.peers().get(1);
        assertThat(p2.hasPresharedKey()).isTrue();
        assertThat(p2.lastHandshake()).as("a zero timespec: no handshake yet").isNull();
        assertThat(p2.endpoint()).isEqualTo(new InetSocketAddress(InetAddress.ofLiteral("2001:db8::2"), 51821));
        assertThat(p2.allowedIps()).extracting(Prefix::toString).containsExactly("10.2.0.0/16", "fd00:2::/64",
                "10.2.1.0/24", "fd00:2:1::/64");
        PeerStatus p3 = s.peers().get(2);
        assertThat(p3.txBytes()).isEqualTo(5);
        assertThat(p3.rxBytes()).isEqualTo(6);
        assertThat(p3.endpoint()).isNull();
        assertThat(p3.allowedIps()).isEmpty();
        assertThat(p3.persistentKeepalive()).isEqualTo(Duration.ZERO);
    }

    @Test
    void anInterruptedDumpAsksForAnotherAndNoPrivateKeyIsNull() throws Exception {
        NetlinkWriter intr = NetlinkWriter.genl(LE, FAMILY, NetlinkWriter.NLM_F_MULTI | DeviceDump.NLM_F_DUMP_INTR,
                9, 0, 1).string(2, "wisp-kwg0");
        assertThatThrownBy(() -> DeviceDump.decode(List.of(message(intr)), FAMILY, LE)).isInstanceOf(
                DeviceDump.Interrupted.class);
        DeviceDump.State bare = DeviceDump.decode(List.of(message(part().string(2, "wisp-kwg0").bytes(3,
                new byte[32]))), FAMILY, LE);
        assertThat(bare.privateKey()).isNull();
        assertThat(bare.peers()).isEmpty();
        // An IPv4-mapped IPv6 prefix stays IPv6 (the JDK would make the address IPv4, and /112 invalid).
        byte[] mapped = new byte[16];
        mapped[10] = (byte) 0xff;
        mapped[11] = (byte) 0xff;
        mapped[12] = 10;
        assertThat(DeviceDump.decode(List.of(message(allowedIp(10, mapped, 112))), FAMILY, LE).peers().get(0)
                .allowedIps()).singleElement().satisfies(p -> {
                    assertThat(p.length()).isEqualTo(112);
                    assertThat(p.address().getAddress()).hasSize(16);
                });
    }

    @Test
    void hostileValuesAreRefusedNamingTheReply() {
        List<NetlinkWriter> bad = List.of(
                // a peer without its public key
                part().string(2, "x").begin(8).begin(0).u16(5, 1).end().end(),
                // a key of 31 bytes
                part().string(2, "x").begin(8).begin(0).bytes(1, new byte[31]).end().end(),
                // an endpoint of family AF_INET in 28 bytes
                part().string(2, "x").begin(8).begin(0).bytes(1, PEER1.bytes()).bytes(4, Arrays.copyOf(sockaddrIn(
                        "192.0.2.1", 1), 28)).end().end(),
                // a counter past 2^63
                part().string(2, "x").begin(8).begin(0).bytes(1, PEER1.bytes()).bytes(8, u64(-1)).end().end(),
                // a handshake time with 2e9 nanoseconds
                part().string(2, "x").begin(8).begin(0).bytes(1, PEER1.bytes()).bytes(6, ByteBuffer.allocate(16)
                        .order(LE).putLong(1).putLong(2_000_000_000L).array()).end().end(),
                // an IPv4 allowed IP /33, an unknown family
                allowedIp(2, new byte[4], 33), allowedIp(99, new byte[4], 8),
                // an IPv6 allowed IP in 4 bytes
                allowedIp(10, new byte[4], 8),
                // no interface name at all
                part().u16(6, 1));
        for (NetlinkWriter w : bad) {
            assertThatThrownBy(() -> DeviceDump.decode(List.of(message(w)), FAMILY, LE)).isInstanceOfSatisfying(
                    NetlinkException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EPROTO)).hasMessageContaining(
                            "WG_CMD_GET_DEVICE reply");
        }
        assertThatThrownBy(() -> DeviceDump.decode(dump(), FAMILY + 1, LE)).hasMessageContaining(
                "is not WG_CMD_GET_DEVICE of family");
        assertThatThrownBy(() -> DeviceDump.decode(List.of(), FAMILY, LE)).isInstanceOf(NetlinkException.class);
    }

    static NetlinkWriter allowedIp(int family, byte[] address, int mask) {
        return part().string(2, "x").begin(8).begin(0).bytes(1, PEER1.bytes()).begin(9).begin(0).u16(1, family).bytes(
                2, address).u8(3, mask).end().end().end().end();
    }

    @Test
    void mutatedDumpsDecodeOrFailAsNetlinkErrorsOnly() throws Exception {
        List<NetlinkMessage> valid = dump();
        Random random = new Random(1515);
        int refused = 0;
        for (int i = 0; i < 20_000; i++) {
            List<NetlinkMessage> m = new ArrayList<>();
            for (NetlinkMessage x : valid) {
                byte[] p = x.payload().clone();
                if (random.nextBoolean()) {
                    for (int k = 1 + random.nextInt(3); k > 0; k--) {
                        p[4 + random.nextInt(p.length - 4)] = (byte) random.nextInt(256);
                    }
                }
                if (random.nextInt(8) == 0) {
                    p = Arrays.copyOf(p, 4 + random.nextInt(p.length - 4));
                }
                m.add(new NetlinkMessage(x.type(), x.flags(), x.seq(), p));
            }
            try {
                DeviceDump.decode(m, FAMILY, LE);
            } catch (NetlinkException e) {
                refused++;
                assertThat(e.errno()).isEqualTo(Errno.EPROTO);
            }
        }
        assertThat(refused).as("some mutations must be refused").isPositive();
    }
}
