package dev.wisp.wireguard.uapi;

import static dev.wisp.linux.Errno.EPROTO;
import static dev.wisp.linux.Errno.EIO;
import static dev.wisp.linux.Errno.EINVAL;
import static dev.wisp.linux.Errno.EADDRINUSE;
import static java.util.Objects.requireNonNull;

import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.WireGuardDevice;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The cross-platform WireGuard userspace API text protocol (what {@code wg(8)} speaks over
 * {@code /var/run/wireguard/<iface>.sock}): {@link #get} renders a device as the {@code get=1}
 * answer, {@link #set} applies the body of a {@code set=1} request. Pure apart from the device it
 * drives; answers are errno values, 0 for success, as the protocol wants.
 */
public final class Uapi {
    private Uapi() {}

    /** The {@code get=1} answer without the trailing {@code errno=0} line. */
    public static String get(WireGuardDevice device) {
        StringBuilder b = new StringBuilder();
        Key priv = device.privateKey();
        if (priv != null) {
            b.append("private_key=").append(priv.toHex()).append('\n');
        }
        if (device.listenPort() != 0) {
            b.append("listen_port=").append(device.listenPort()).append('\n');
        }
        if (device.fwmark() != 0) {
            b.append("fwmark=").append(device.fwmark()).append('\n');
        }
        for (PeerStatus p : device.peers()) {
            b.append("public_key=").append(p.publicKey().toHex()).append('\n');
            Key psk = device.presharedKey(p.publicKey());
            b.append("preshared_key=").append(psk == null ? new String(new char[64]).replace('\0', '0') : psk.toHex())
                    .append('\n');
            b.append("protocol_version=1\n");
            if (p.endpoint() != null) {
                b.append("endpoint=").append(formatEndpoint(p.endpoint())).append('\n');
            }
            long sec = p.lastHandshake() == null ? 0 : p.lastHandshake().getEpochSecond();
            long nsec = p.lastHandshake() == null ? 0 : p.lastHandshake().getNano();
            b.append("last_handshake_time_sec=").append(sec).append('\n');
            b.append("last_handshake_time_nsec=").append(nsec).append('\n');
            b.append("tx_bytes=").append(p.txBytes()).append('\n');
            b.append("rx_bytes=").append(p.rxBytes()).append('\n');
            b.append("persistent_keepalive_interval=").append(p.persistentKeepalive().toSeconds()).append('\n');
            for (Prefix a : p.allowedIps()) {
                b.append("allowed_ip=").append(a).append('\n');
            }
        }
        return b.toString();
    }

    static String formatEndpoint(InetSocketAddress a) {
        InetAddress ip = a.getAddress();
        String host = Prefix.format(ip);
        return (ip.getAddress().length == 16 ? "[" + host + "]" : host) + ":" + a.getPort();
    }

    static InetSocketAddress parseEndpoint(String s) {
        int colon = s.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("endpoint '" + s + "' is not host:port");
        }
        String host = s.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port = Integer.parseInt(s.substring(colon + 1));
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("endpoint port out of range: " + s);
        }
        Prefix ip = Prefix.parse(host);
        return new InetSocketAddress(ip.address(), port);
    }

    /** A {@code set=1} request failed; {@link #errno} is what the protocol answers. */
    public static final class UapiException extends Exception {
        private static final long serialVersionUID = 1L;
        private final int errno;

        UapiException(int errno, String message) {
            super(message);
            this.errno = errno;
        }

        public int errno() {
            return errno;
        }
    }

    /** A peer section being collected. */
    private static final class PeerSection {
        final Key key;
        boolean remove;
        boolean updateOnly;
        Key psk;
        InetSocketAddress endpoint;
        Duration keepalive;
        boolean replaceAllowedIps;
        final List<Prefix> allowedIps = new ArrayList<>();

        PeerSection(Key key) {
            this.key = key;
        }
    }

    /**
     * Applies the {@code key=value} lines of a {@code set=1} request, in order, as wireguard-go
     * does: device keys first, then one section per {@code public_key}.
     */
    public static void set(WireGuardDevice device, List<String> lines) throws UapiException {
        requireNonNull(device, "device");
        PeerSection peer = null;
        for (String line : lines) {
            int eq = line.indexOf('=');
            if (eq <= 0) {
                throw new UapiException(EPROTO, "line without key=value: " + abbreviate(line));
            }
            String key = line.substring(0, eq);
            String value = line.substring(eq + 1);
            try {
                if (peer == null || !isPeerKey(key)) {
                    if (key.equals("public_key")) {
                        apply(device, peer);
                        peer = new PeerSection(Key.fromHex(value));
                        continue;
                    }
                    if (peer != null) {
                        throw new UapiException(EINVAL, "device key '" + key + "' after a peer section");
                    }
                    setDevice(device, key, value);
                    continue;
                }
                setPeer(peer, key, value);
            } catch (IllegalArgumentException e) {
                throw new UapiException(EINVAL, key + ": " + e.getMessage());
            }
        }
        apply(device, peer);
    }

    private static boolean isPeerKey(String key) {
        return switch (key) {
            case "public_key", "remove", "update_only", "preshared_key", "endpoint", "persistent_keepalive_interval",
                    "replace_allowed_ips", "allowed_ip", "protocol_version" ->
                true;
            default -> false;
        };
    }

    private static void setDevice(WireGuardDevice device, String key, String value) throws UapiException {
        switch (key) {
            case "private_key" -> {
                Key k = Key.fromHex(value);
                device.setPrivateKey(k.isZero() ? null : k);
            }
            case "listen_port" -> {
                try {
                    device.setListenPort(Integer.parseInt(value));
                } catch (IOException e) {
                    throw new UapiException(EADDRINUSE, e.getMessage());
                }
            }
            case "fwmark" -> {
                try {
                    device.setFwmark((int) Long.parseLong(value));
                } catch (IOException e) {
                    throw new UapiException(EIO, e.getMessage());
                }
            }
            case "replace_peers" -> {
                requireTrue(key, value);
                device.removeAllPeers();
            }
            default -> throw new UapiException(EINVAL, "unknown device key '" + abbreviate(key) + "'");
        }
    }

    private static void setPeer(PeerSection p, String key, String value) throws UapiException {
        switch (key) {
            case "remove" -> p.remove = requireTrue(key, value);
            case "update_only" -> p.updateOnly = requireTrue(key, value);
            case "preshared_key" -> p.psk = Key.fromHex(value);
            case "endpoint" -> p.endpoint = parseEndpoint(value);
            case "persistent_keepalive_interval" -> {
                int secs = Integer.parseInt(value);
                if (secs < 0 || secs > 65535) {
                    throw new IllegalArgumentException("interval must be 0..65535");
                }
                p.keepalive = Duration.ofSeconds(secs);
            }
            case "replace_allowed_ips" -> p.replaceAllowedIps = requireTrue(key, value);
            case "allowed_ip" -> p.allowedIps.add(Prefix.parse(value));
            case "protocol_version" -> {
                if (!value.equals("1")) {
                    throw new UapiException(EPROTO, "protocol_version " + abbreviate(value) + " is not supported");
                }
            }
            default -> throw new UapiException(EINVAL, "unknown peer key '" + abbreviate(key) + "'");
        }
    }

    private static boolean requireTrue(String key, String value) {
        if (!value.equals("true")) {
            throw new IllegalArgumentException(key + " only accepts 'true'");
        }
        return true;
    }

    private static void apply(WireGuardDevice device, PeerSection p) {
        if (p == null) {
            return;
        }
        if (p.remove) {
            device.removePeer(p.key);
            return;
        }
        if (p.updateOnly && device.presharedKey(p.key) == null) {
            return;
        }
        Key self = device.publicKey();
        if (self != null && self.equals(p.key)) {
            // wireguard-go ignores a peer that is the device itself.
            return;
        }
        device.upsertPeer(
                new PeerConfig(p.key, p.psk, p.endpoint, p.keepalive, p.replaceAllowedIps, p.allowedIps));
    }

    private static String abbreviate(String s) {
        return s.length() > 40 ? s.substring(0, 40) + "…" : s;
    }
}
