package dev.wisp.wireguard.netlink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.linux.NetlinkWriter;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.Prefix;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The generic-netlink messages byte for byte against the layout of the kernel's uapi headers
 * ({@code <linux/wireguard.h>}, {@code <linux/netlink.h>}, {@code <linux/genetlink.h>}), written out
 * by hand here in little-endian host order: attribute numbers, {@code NLA_F_NESTED} (0x8000) on
 * nests, 4-byte padding, the sockaddr of the endpoint.
 */
class WireGuardNetlinkTest {
    static final HexFormat HEX = HexFormat.of();
    static final Key PRIVATE = Key.of(range(0x01));
    static final Key PEER = Key.of(range(0x40));

    static byte[] range(int from) {
        byte[] b = new byte[32];
        for (int i = 0; i < 32; i++) {
            b[i] = (byte) (from + i);
        }
        return b;
    }

    static byte[] hex(String... parts) {
        return HEX.parseHex(String.join("", parts).replace(" ", ""));
    }

    @Test
    void setDeviceWithAPeerIsLaidOutAsTheUapiHeaderSays() throws Exception {
        PeerConfig peer = new PeerConfig(PEER, null, new InetSocketAddress(InetAddress.ofLiteral("192.0.2.1"), 51820),
                Duration.ofSeconds(25), true, List.of(Prefix.parse("10.0.0.0/24")));
        byte[] msg = WireGuardNetlink.setDevice(26, 7, new WireGuardNetlink.SetDevice("wg0", PRIVATE, 51820, null, true,
                List.of(peer), List.of()), ByteOrder.LITTLE_ENDIAN);
        assertThat(HEX.formatHex(msg)).isEqualTo(HEX.formatHex(hex(
                // nlmsghdr: len 192, type 26 (the family id), flags REQUEST|ACK, seq 7, pid 0
                "c0000000 1a00 0500 07000000 00000000",
                // genlmsghdr: WG_CMD_SET_DEVICE (1), version 1
                "01 01 0000",
                // WGDEVICE_A_IFNAME (2) "wg0\0"
                "0800 0200 77673000",
                // WGDEVICE_A_PRIVATE_KEY (3): 32 bytes
                "2400 0300 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
                // WGDEVICE_A_LISTEN_PORT (6): u16 51820, padded
                "0600 0600 6cca 0000",
                // WGDEVICE_A_FLAGS (5): WGDEVICE_F_REPLACE_PEERS
                "0800 0500 01000000",
                // WGDEVICE_A_PEERS (8 | NLA_F_NESTED), one peer (0 | NLA_F_NESTED)
                "7000 0880 6c00 0080",
                // WGPEER_A_PUBLIC_KEY (1)
                "2400 0100 404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
                // WGPEER_A_FLAGS (3): WGPEER_F_REPLACE_ALLOWEDIPS
                "0800 0300 02000000",
                // WGPEER_A_ENDPOINT (4): sockaddr_in, AF_INET (host order), port and address in network order
                "1400 0400 0200 ca6c c0000201 0000000000000000",
                // WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL (5): u16 25, padded
                "0600 0500 1900 0000",
                // WGPEER_A_ALLOWEDIPS (9 | NLA_F_NESTED), one entry (0 | NLA_F_NESTED)
                "2000 0980 1c00 0080",
                // WGALLOWEDIP_A_FAMILY (1) AF_INET, WGALLOWEDIP_A_IPADDR (2), WGALLOWEDIP_A_CIDR_MASK (3) 24
                "0600 0100 0200 0000", "0800 0200 0a000000", "0500 0300 18 000000")));
    }

    @Test
    void removingAPeerSendsItsKeyWithRemoveMe() {
        byte[] msg = WireGuardNetlink.setDevice(26, 8, new WireGuardNetlink.SetDevice("wg0", null, null, null, false,
                List.of(), List.of(PEER)), ByteOrder.LITTLE_ENDIAN);
        assertThat(HEX.formatHex(msg)).isEqualTo(HEX.formatHex(hex("50000000 1a00 0500 08000000 00000000",
                "01 01 0000", "0800 0200 77673000", "3400 0880 3000 0080",
                "2400 0100 404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
                // WGPEER_A_FLAGS: WGPEER_F_REMOVE_ME
                "0800 0300 01000000")));
    }

    @Test
    void theFamilyIsResolvedThroughTheGenericNetlinkController() {
        assertThat(HEX.formatHex(WireGuardNetlink.getFamily(1, ByteOrder.LITTLE_ENDIAN))).isEqualTo(HEX.formatHex(hex(
                // type GENL_ID_CTRL (0x10), CTRL_CMD_GETFAMILY (3), CTRL_ATTR_FAMILY_NAME (2) "wireguard\0"
                "24000000 1000 0500 01000000 00000000", "03 01 0000", "0e00 0200 776972656775617264 000000")));
    }

    @Test
    void anIpv6EndpointIsASockaddrIn6AndTheHeaderFollowsTheHostOrder() {
        NetlinkWriter w = NetlinkWriter.genl(ByteOrder.LITTLE_ENDIAN, 26, 5, 1, 1, 1);
        assertThat(HEX.formatHex(WireGuardNetlink.sockaddr(new InetSocketAddress(InetAddress.ofLiteral(
                "2001:db8::1"), 51820), w))).isEqualTo("0a00ca6c" + "00000000" + "20010db8000000000000000000000001"
                        + "00000000");
        byte[] big = WireGuardNetlink.getFamily(1, ByteOrder.BIG_ENDIAN);
        assertThat(HEX.formatHex(big, 0, 8)).as("a big-endian host's nlmsghdr").isEqualTo("0000002400100005");
        assertThatThrownBy(() -> new WireGuardNetlink.SetDevice("an-interface-name-too-long", null, null, null, false,
                List.of(), List.of())).isInstanceOf(IllegalArgumentException.class);
    }
}
