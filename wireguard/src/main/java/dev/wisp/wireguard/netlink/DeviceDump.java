package dev.wisp.wireguard.netlink;

import static dev.wisp.linux.Sockets.AF_INET;
import static dev.wisp.linux.Sockets.AF_INET6;
import static dev.wisp.wireguard.netlink.WireGuardNetlink.*;
import static java.util.Objects.requireNonNull;

import dev.wisp.linux.NetlinkAttributes;
import dev.wisp.linux.NetlinkException;
import dev.wisp.linux.NetlinkMessage;
import dev.wisp.linux.NetlinkWriter;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The answer to {@code WG_CMD_GET_DEVICE}, decoded into the {@link PeerStatus} records the Java
 * device reports, so {@code wg show}-style state, {@code /config_dump} and the metrics read one type
 * whichever device runs. The kernel answers with a dump: the device's own attributes in the first
 * message, its peers in as many messages as they need, and a peer whose allowed IPs do not fit one
 * message continued in the next with its public key repeated and only the rest of its allowed IPs;
 * consecutive entries with the same key are therefore one peer (as {@code wg(8)} coalesces them).
 * Every attribute is checked (keys of 32 bytes, a sockaddr of the family's size, a prefix length
 * within its family): a {@link NetlinkException} ({@code EPROTO}) otherwise. A message flagged
 * {@code NLM_F_DUMP_INTR} (the peer list changed during the dump) makes {@link #decode} fail with
 * {@link Interrupted}, which the caller answers by dumping again. Pure and thread-safe.
 */
public final class DeviceDump {
    /** {@code NLM_F_DUMP_INTR}: the dump is inconsistent, do it again. */
    static final int NLM_F_DUMP_INTR = 0x10;
    static final int WGPEER_A_PROTOCOL_VERSION = 10;

    /**
     * A WireGuard interface as the kernel reports it.
     *
     * @param privateKey null when none is set (or the reader lacked {@code CAP_NET_ADMIN}); never log it
     * @param publicKey null when no private key is set
     */
    public record State(int ifindex, String ifname, Key privateKey, Key publicKey, int listenPort, int fwmark,
            List<PeerStatus> peers) {
        public State {
            peers = List.copyOf(peers);
        }
    }

    /** The kernel's peer list changed while it was being dumped: dump again. */
    public static final class Interrupted extends Exception {
        private static final long serialVersionUID = 1L;

        Interrupted() {
            super("the peer list changed during the dump (NLM_F_DUMP_INTR)");
        }
    }

    private DeviceDump() {}

    /**
     * Decodes every message of one dump, in order.
     *
     * @param familyId the {@code wireguard} family's id: each message must be of that type
     */
    public static State decode(List<NetlinkMessage> messages, int familyId, ByteOrder order)
            throws NetlinkException, Interrupted {
        requireNonNull(messages, "messages");
        String what = "WG_CMD_GET_DEVICE reply";
        if (messages.isEmpty()) {
            throw NetlinkException.malformed(what, "no message");
        }
        int ifindex = 0;
        int listenPort = 0;
        int fwmark = 0;
        String ifname = null;
        Key privateKey = null;
        Key publicKey = null;
        List<PeerStatus> peers = new ArrayList<>();
        for (NetlinkMessage m : messages) {
            if ((m.flags() & NLM_F_DUMP_INTR) != 0) {
                throw new Interrupted();
            }
            if (m.type() != familyId || m.genlCommand() != WG_CMD_GET_DEVICE) {
                throw NetlinkException.malformed(what, "message type " + m.type() + " command " + m.genlCommand()
                        + " is not WG_CMD_GET_DEVICE of family " + familyId);
            }
            for (NetlinkAttributes.Attribute a : m.attributes(NetlinkWriter.GENL_HDRLEN, order, what).all()) {
                switch (a.type()) {
                    case WGDEVICE_A_IFINDEX -> ifindex = a.u32();
                    case WGDEVICE_A_IFNAME -> ifname = a.string();
                    case WGDEVICE_A_PRIVATE_KEY -> privateKey = nonZero(a.bytes(Key.LEN));
                    case WGDEVICE_A_PUBLIC_KEY -> publicKey = nonZero(a.bytes(Key.LEN));
                    case WGDEVICE_A_LISTEN_PORT -> listenPort = a.u16();
                    case WGDEVICE_A_FWMARK -> fwmark = a.u32();
                    case WGDEVICE_A_PEERS -> {
                        for (NetlinkAttributes.Attribute p : a.nested().all()) {
                            PeerStatus next = peer(p.nested(), what);
                            int last = peers.size() - 1;
                            if (last >= 0 && peers.get(last).publicKey().equals(next.publicKey())) {
                                peers.set(last, continued(peers.get(last), next));
                            } else {
                                peers.add(next);
                            }
                        }
                    }
                    default -> {
                        // Attributes of newer kernels are not ours to interpret.
                    }
                }
            }
        }
        if (ifname == null) {
            throw NetlinkException.malformed(what, "no WGDEVICE_A_IFNAME");
        }
        return new State(ifindex, ifname, privateKey, publicKey, listenPort, fwmark, peers);
    }

    /** One peer entry as decoded (possibly a continuation of the one before: see {@link #decode}). */
    private static PeerStatus peer(NetlinkAttributes a, String what) throws NetlinkException {
        NetlinkAttributes.Attribute key = a.first(WGPEER_A_PUBLIC_KEY);
        if (key == null) {
            throw NetlinkException.malformed(what, "a peer without WGPEER_A_PUBLIC_KEY");
        }
        boolean psk = false;
        InetSocketAddress endpoint = null;
        Instant handshake = null;
        long rx = 0;
        long tx = 0;
        int keepalive = 0;
        List<Prefix> allowed = new ArrayList<>();
        for (NetlinkAttributes.Attribute x : a.all()) {
            switch (x.type()) {
                case WGPEER_A_PRESHARED_KEY -> psk = nonZero(x.bytes(Key.LEN)) != null;
                case WGPEER_A_ENDPOINT -> endpoint = endpoint(x, what);
                case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL -> keepalive = x.u16();
                case WGPEER_A_LAST_HANDSHAKE_TIME -> handshake = timespec(x, what);
                case WGPEER_A_RX_BYTES -> rx = counter(x, what);
                case WGPEER_A_TX_BYTES -> tx = counter(x, what);
                case WGPEER_A_ALLOWEDIPS -> {
                    for (NetlinkAttributes.Attribute ip : x.nested().all()) {
                        allowed.add(allowedIp(ip.nested(), what));
                    }
                }
                default -> {
                    // WGPEER_A_PROTOCOL_VERSION and anything newer.
                }
            }
        }
        return new PeerStatus(Key.of(key.bytes(Key.LEN)), psk, endpoint, handshake, tx, rx, Duration.ofSeconds(
                keepalive), allowed);
    }

    /** {@code first} with {@code more}'s allowed IPs after its own: one peer split over two messages. */
    private static PeerStatus continued(PeerStatus first, PeerStatus more) {
        List<Prefix> all = new ArrayList<>(first.allowedIps());
        all.addAll(more.allowedIps());
        return new PeerStatus(first.publicKey(), first.hasPresharedKey(), first.endpoint(), first.lastHandshake(),
                first.txBytes(), first.rxBytes(), first.persistentKeepalive(), List.copyOf(all));
    }

    private static Key nonZero(byte[] k) {
        for (byte x : k) {
            if (x != 0) {
                return Key.of(k);
            }
        }
        return null;
    }

    private static long counter(NetlinkAttributes.Attribute x, String what) throws NetlinkException {
        long v = x.u64();
        if (v < 0) {
            throw NetlinkException.malformed(what, "a byte counter past 2^63: " + Long.toUnsignedString(v));
        }
        return v;
    }

    /** {@code struct __kernel_timespec}: two signed 64-bit fields; zero means no handshake yet. */
    private static Instant timespec(NetlinkAttributes.Attribute x, String what) throws NetlinkException {
        ByteBuffer b = ByteBuffer.wrap(x.bytes(16)).order(x.order());
        long seconds = b.getLong();
        long nanos = b.getLong();
        if (seconds == 0 && nanos == 0) {
            return null;
        }
        if (seconds < 0 || nanos < 0 || nanos >= 1_000_000_000L || seconds > Instant.MAX.getEpochSecond()) {
            throw NetlinkException.malformed(what, "a handshake time of " + seconds + " s " + nanos + " ns");
        }
        return Instant.ofEpochSecond(seconds, nanos);
    }

    /** {@code sockaddr_in} (16 bytes) or {@code sockaddr_in6} (28): family in host order, port and address in network order. */
    private static InetSocketAddress endpoint(NetlinkAttributes.Attribute x, String what) throws NetlinkException {
        byte[] raw = x.bytes();
        if (raw.length < 2) {
            throw NetlinkException.malformed(what, "an endpoint of " + raw.length + " bytes");
        }
        ByteBuffer b = ByteBuffer.wrap(raw).order(x.order());
        int family = Short.toUnsignedInt(b.getShort(0));
        int size = family == AF_INET ? 16 : family == AF_INET6 ? 28 : -1;
        if (raw.length != size) {
            throw NetlinkException.malformed(what, "an endpoint of family " + family + " in " + raw.length + " bytes");
        }
        int port = Short.toUnsignedInt(b.order(ByteOrder.BIG_ENDIAN).getShort(2));
        byte[] ip = family == AF_INET ? Arrays.copyOfRange(raw, 4, 8) : Arrays.copyOfRange(raw, 8, 24);
        return new InetSocketAddress(address(ip), port);
    }

    private static Prefix allowedIp(NetlinkAttributes a, String what) throws NetlinkException {
        NetlinkAttributes.Attribute family = a.first(WGALLOWEDIP_A_FAMILY);
        NetlinkAttributes.Attribute ip = a.first(WGALLOWEDIP_A_IPADDR);
        NetlinkAttributes.Attribute mask = a.first(WGALLOWEDIP_A_CIDR_MASK);
        if (family == null || ip == null || mask == null) {
            throw NetlinkException.malformed(what, "an allowed IP without its family, address or mask");
        }
        int f = family.u16();
        int size = f == AF_INET ? 4 : f == AF_INET6 ? 16 : -1;
        if (size < 0) {
            throw NetlinkException.malformed(what, "an allowed IP of family " + f);
        }
        int length = mask.u8();
        if (length > size * 8) {
            throw NetlinkException.malformed(what, "an allowed IP /" + length + " of family " + f);
        }
        return new Prefix(address(ip.bytes(size)), length);
    }

    /** An IPv6 address stays one even when it is IPv4-mapped (so a /96 stays valid). */
    private static InetAddress address(byte[] ip) {
        try {
            return ip.length == 4 ? InetAddress.getByAddress(ip) : Inet6Address.getByAddress(null, ip, null);
        } catch (UnknownHostException e) {
            throw new IllegalStateException("an address of " + ip.length + " bytes", e);
        }
    }
}
