package dev.wisp.wireguard.netlink;

import static dev.wisp.linux.Sockets.AF_INET6;
import static dev.wisp.linux.Sockets.AF_INET;
import static java.util.Objects.requireNonNull;

import dev.wisp.linux.GenericNetlink;
import dev.wisp.linux.NetlinkWriter;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.Prefix;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The messages that configure kernel WireGuard over generic netlink, encoded as the kernel's uapi
 * header {@code <linux/wireguard.h>} lays them out: {@code WG_CMD_SET_DEVICE} (private key, listen
 * port, fwmark, peers with public key, preshared key, endpoint, keepalive and allowed IPs), and the
 * {@code CTRL_CMD_GETFAMILY} request that resolves the {@code "wireguard"} family's id first, and the
 * {@code WG_CMD_GET_DEVICE} dump request ({@link DeviceDump} decodes its answer). Pure: bytes out, no
 * socket ({@link KernelWireGuard} sends them). Thread-safe (stateless).
 */
public final class WireGuardNetlink {
    /** {@code WG_GENL_NAME}, {@code WG_GENL_VERSION}. */
    public static final String FAMILY = "wireguard";
    static final int VERSION = 1;
    /** {@code enum wg_cmd}. */
    static final int WG_CMD_GET_DEVICE = 0;
    static final int WG_CMD_SET_DEVICE = 1;
    /** {@code enum wgdevice_attribute}. */
    static final int WGDEVICE_A_IFINDEX = 1;
    static final int WGDEVICE_A_IFNAME = 2;
    static final int WGDEVICE_A_PRIVATE_KEY = 3;
    static final int WGDEVICE_A_PUBLIC_KEY = 4;
    static final int WGDEVICE_A_FLAGS = 5;
    static final int WGDEVICE_A_LISTEN_PORT = 6;
    static final int WGDEVICE_A_FWMARK = 7;
    static final int WGDEVICE_A_PEERS = 8;
    /** {@code enum wgdevice_flag}. */
    static final int WGDEVICE_F_REPLACE_PEERS = 1;
    /** {@code enum wgpeer_attribute}. */
    static final int WGPEER_A_PUBLIC_KEY = 1;
    static final int WGPEER_A_PRESHARED_KEY = 2;
    static final int WGPEER_A_FLAGS = 3;
    static final int WGPEER_A_ENDPOINT = 4;
    static final int WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5;
    static final int WGPEER_A_LAST_HANDSHAKE_TIME = 6;
    static final int WGPEER_A_RX_BYTES = 7;
    static final int WGPEER_A_TX_BYTES = 8;
    static final int WGPEER_A_ALLOWEDIPS = 9;
    /** {@code enum wgpeer_flag}. */
    static final int WGPEER_F_REMOVE_ME = 1;
    static final int WGPEER_F_REPLACE_ALLOWEDIPS = 2;
    /** {@code enum wgallowedip_attribute}. */
    static final int WGALLOWEDIP_A_FAMILY = 1;
    static final int WGALLOWEDIP_A_IPADDR = 2;
    static final int WGALLOWEDIP_A_CIDR_MASK = 3;

    /**
     * What {@code WG_CMD_SET_DEVICE} sets, with {@code wg set} semantics: absent (null) fields stay as
     * they are, {@code replacePeers} removes the peers not listed.
     *
     * @param privateKey the interface's private key, or null
     * @param listenPort 0-65535, or null
     * @param fwmark or null
     * @param removed public keys of peers to remove
     */
    public record SetDevice(String ifname, Key privateKey, Integer listenPort, Integer fwmark, boolean replacePeers,
            List<PeerConfig> peers, List<Key> removed) {
        public SetDevice {
            requireNonNull(ifname, "ifname");
            if (ifname.isEmpty() || ifname.length() > 15) {
                throw new IllegalArgumentException("interface name '" + ifname + "' must be 1-15 characters");
            }
            if (listenPort != null && (listenPort < 0 || listenPort > 65535)) {
                throw new IllegalArgumentException("listen port " + listenPort + " is outside 0-65535");
            }
            peers = List.copyOf(requireNonNull(peers, "peers"));
            removed = List.copyOf(requireNonNull(removed, "removed"));
        }
    }

    private WireGuardNetlink() {}

    /** {@code CTRL_CMD_GETFAMILY} for {@code "wireguard"}: its answer carries the family id. */
    public static byte[] getFamily(int seq, ByteOrder order) {
        return GenericNetlink.getFamilyRequest(FAMILY, seq, order);
    }

    /**
     * {@code WG_CMD_GET_DEVICE} of {@code ifname} as a dump ({@code NLM_F_DUMP}, as the kernel requires):
     * the answer is one or more messages that {@link DeviceDump#decode} puts back together.
     */
    public static byte[] getDevice(int familyId, int seq, String ifname, ByteOrder order) {
        requireNonNull(ifname, "ifname");
        return NetlinkWriter.genl(order, familyId, NetlinkWriter.REQUEST_WITH_ACK | NetlinkWriter.NLM_F_DUMP, seq,
                WG_CMD_GET_DEVICE, VERSION).string(WGDEVICE_A_IFNAME, ifname).finish();
    }

    /** {@code WG_CMD_SET_DEVICE} to the family {@code familyId} (from {@link #getFamily}'s answer). */
    public static byte[] setDevice(int familyId, int seq, SetDevice d, ByteOrder order) {
        requireNonNull(d, "d");
        NetlinkWriter w = NetlinkWriter.genl(order, familyId, NetlinkWriter.REQUEST_WITH_ACK, seq, WG_CMD_SET_DEVICE,
                VERSION);
        w.string(WGDEVICE_A_IFNAME, d.ifname());
        if (d.privateKey() != null) {
            w.bytes(WGDEVICE_A_PRIVATE_KEY, d.privateKey().bytes());
        }
        if (d.listenPort() != null) {
            w.u16(WGDEVICE_A_LISTEN_PORT, d.listenPort());
        }
        if (d.fwmark() != null) {
            w.u32(WGDEVICE_A_FWMARK, d.fwmark());
        }
        if (d.replacePeers()) {
            w.u32(WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
        }
        if (!d.peers().isEmpty() || !d.removed().isEmpty()) {
            w.begin(WGDEVICE_A_PEERS);
            for (PeerConfig p : d.peers()) {
                peer(w, p);
            }
            for (Key k : d.removed()) {
                w.begin(0).bytes(WGPEER_A_PUBLIC_KEY, k.bytes()).u32(WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME).end();
            }
            w.end();
        }
        return w.finish();
    }

    /** One peer: a nested entry of type 0 in the peers array (as wg(8) writes them). */
    private static void peer(NetlinkWriter w, PeerConfig p) {
        w.begin(0).bytes(WGPEER_A_PUBLIC_KEY, p.publicKey().bytes());
        if (p.presharedKey() != null) {
            w.bytes(WGPEER_A_PRESHARED_KEY, p.presharedKey().bytes());
        }
        if (p.replaceAllowedIps()) {
            w.u32(WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS);
        }
        if (p.endpoint() != null) {
            w.bytes(WGPEER_A_ENDPOINT, sockaddr(p.endpoint(), w));
        }
        if (p.persistentKeepalive() != null) {
            w.u16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, (int) p.persistentKeepalive().toSeconds());
        }
        if (!p.allowedIps().isEmpty()) {
            w.begin(WGPEER_A_ALLOWEDIPS);
            for (Prefix a : p.allowedIps()) {
                w.begin(0)
                        .u16(WGALLOWEDIP_A_FAMILY, a.address() instanceof Inet6Address ? AF_INET6 : AF_INET)
                        .bytes(WGALLOWEDIP_A_IPADDR, a.address().getAddress())
                        .u8(WGALLOWEDIP_A_CIDR_MASK, a.length())
                        .end();
            }
            w.end();
        }
        w.end();
    }

    /**
     * {@code struct sockaddr_in} (16 bytes) or {@code sockaddr_in6} (28): the family in host order,
     * the port and address in network order, the rest zero (flow info, scope id).
     */
    static byte[] sockaddr(InetSocketAddress a, NetlinkWriter w) {
        if (a.isUnresolved()) {
            throw new IllegalArgumentException("endpoint " + a + " is not an IP address");
        }
        boolean v4 = a.getAddress() instanceof Inet4Address;
        ByteBuffer b = ByteBuffer.allocate(v4 ? 16 : 28).order(w.order());
        b.putShort((short) (v4 ? AF_INET : AF_INET6));
        b.order(ByteOrder.BIG_ENDIAN).putShort((short) a.getPort());
        if (v4) {
            b.put(a.getAddress().getAddress());
        } else {
            b.putInt(0);
            b.put(a.getAddress().getAddress());
        }
        return b.array();
    }
}
