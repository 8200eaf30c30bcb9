package dev.wisp.wireguard.netlink;

import static java.util.Objects.requireNonNull;

import dev.wisp.linux.Errno;
import dev.wisp.linux.GenericNetlink;
import dev.wisp.linux.NativeException;
import dev.wisp.linux.NetlinkChannel;
import dev.wisp.linux.NetlinkException;
import dev.wisp.linux.NetlinkMessage;
import dev.wisp.linux.NetlinkSocket;
import dev.wisp.linux.RtNetlink;
import dev.wisp.wireguard.DeviceStats;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.UnknownPeerHandler;
import dev.wisp.wireguard.WireGuardDevice;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Kernel WireGuard driven over netlink, behind the same {@link WireGuardDevice} the Java device
 * offers: {@link #open} resolves the {@code wireguard} generic-netlink family, creates the link over
 * rtnetlink ({@code RTM_NEWLINK}, kind {@code wireguard}) or adopts an existing one of that kind,
 * sets its MTU and brings it up; configuration goes as {@code WG_CMD_SET_DEVICE}
 * ({@link WireGuardNetlink}) and state comes back from the {@code WG_CMD_GET_DEVICE} dump
 * ({@link DeviceDump}) as the same {@link PeerStatus} records.
 *
 * <p>What the kernel does not have, this says rather than pretends: it has one private key, so a
 * secondary key is only remembered here and handshakes addressed to it are not answered;
 * {@link #swapKeys} sets the kernel's key in one step (each peer re-handshakes); a peer's key change
 * is a removal and an addition (its sessions are lost); there is no upcall for unknown peers, so the
 * handler is never called (the caller installs peers itself); {@link #stats} has only the peer count
 * (the kernel exports no handshake or drop counters over netlink). Never run against a real
 * WireGuard module here (these machines have none): see ARCHITECTURE.md.
 *
 * <p>Threads: every method is synchronized (one netlink request at a time per device).
 */
public final class KernelWireGuard implements WireGuardDevice {
    private static final Logger LOG = LoggerFactory.getLogger(KernelWireGuard.class);
    /** Dumps redone when the peer list changes under one, before giving up. */
    static final int DUMP_ATTEMPTS = 5;
    private static final Key ZERO_KEY = Key.of(new byte[Key.LEN]);

    private final String name;
    private final NetlinkChannel genl;
    private final NetlinkChannel route;
    /** Closes the two sockets (a no-op for a scripted kernel). */
    private final AutoCloseable sockets;
    private final int familyId;
    private final int ifindex;
    private final boolean created;
    /** Guarded by this. */
    private Key privateKey;
    private Key secondary;
    /** When the kernel's key last changed: handshakes after it used the current key. */
    private Instant keySetAt = Instant.EPOCH;
    private boolean closed;

    /** Over {@code genl} and {@code route} (sockets to the kernel, or a scripted kernel in tests). */
    KernelWireGuard(String name, NetlinkChannel genl, NetlinkChannel route, AutoCloseable sockets, int familyId,
            int ifindex, boolean created) {
        this.name = requireNonNull(name, "name");
        this.genl = requireNonNull(genl, "genl");
        this.route = requireNonNull(route, "route");
        this.sockets = requireNonNull(sockets, "sockets");
        this.familyId = familyId;
        this.ifindex = ifindex;
        this.created = created;
    }

    /**
     * Resolves the family, then creates (or adopts) the link {@code name}, sets {@code mtu} and brings it
     * up, in the calling thread's network namespace.
     *
     * @throws NativeException naming what failed: the family ({@code ENOENT}: no module), the link's
     *     creation (e.g. {@code EOPNOTSUPP}, "Unknown device type"), a link of that name of another kind
     */
    public static KernelWireGuard open(String name, int mtu) throws NativeException {
        requireNonNull(name, "name");
        NetlinkSocket genl = NetlinkSocket.open(NetlinkSocket.NETLINK_GENERIC);
        NetlinkSocket route = null;
        try {
            int family = GenericNetlink.resolve(genl, WireGuardNetlink.FAMILY).id();
            route = NetlinkSocket.open(NetlinkSocket.NETLINK_ROUTE);
            LinkHandle link = createOrAdopt(route, name);
            try {
                RtNetlink.setMtuAndUp(route, link.index(), mtu);
            } catch (NativeException e) {
                if (link.created()) {
                    RtNetlink.deleteLink(route, link.index());
                }
                throw e;
            }
            LOG.info("kernel WireGuard: family id {}, link {} (index {}) {}", family, name, link.index(), link.created()
                    ? "created"
                    : "adopted");
            NetlinkSocket r = route;
            return new KernelWireGuard(name, genl, route, () -> {
                genl.close();
                r.close();
            }, family, link.index(), link.created());
        } catch (NativeException | RuntimeException e) {
            genl.close();
            if (route != null) {
                route.close();
            }
            throw e;
        }
    }

    /** The link and whether this call created it. */
    record LinkHandle(int index, boolean created) {}

    /**
     * Adopts the link {@code name} when it exists and is of kind {@code wireguard}, else creates it.
     *
     * @throws NativeException the kernel's refusal to create it, or a link of that name of another kind
     */
    static LinkHandle createOrAdopt(NetlinkChannel route, String name) throws NativeException {
        try {
            RtNetlink.Link existing = RtNetlink.link(route, name);
            if (!WireGuardNetlink.FAMILY.equals(existing.kind())) {
                throw new NetlinkException("adopt link " + name, Errno.EEXIST, null, "it exists and is "
                        + (existing.kind() == null ? "not a virtual link" : "of kind " + existing.kind())
                        + ", not wireguard: remove it or choose another --wireguard-interface");
            }
            return new LinkHandle(existing.index(), false);
        } catch (NetlinkException e) {
            if (e.errno() != Errno.ENODEV) {
                throw e;
            }
        }
        RtNetlink.createLink(route, name, WireGuardNetlink.FAMILY);
        return new LinkHandle(RtNetlink.link(route, name).index(), true);
    }

    @Override
    public String name() {
        return name;
    }

    /** The link's index. */
    public int ifindex() {
        return ifindex;
    }

    private void set(WireGuardNetlink.SetDevice d, String what) {
        try {
            genl.request("WG_CMD_SET_DEVICE " + name + " (" + what + ")", WireGuardNetlink.setDevice(familyId, 0, d,
                    genl.order()));
        } catch (NativeException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static WireGuardNetlink.SetDevice change(String name, Key key, Integer port, Integer fwmark,
            boolean replacePeers, List<PeerConfig> peers, List<Key> removed) {
        return new WireGuardNetlink.SetDevice(name, key, port, fwmark, replacePeers, peers, removed);
    }

    /** The device's state now, from a fresh dump (redone if the peer list changed during it). */
    public synchronized DeviceDump.State state() throws NativeException {
        for (int attempt = 1;; attempt++) {
            List<NetlinkMessage> answer = genl.request("WG_CMD_GET_DEVICE " + name, WireGuardNetlink.getDevice(
                    familyId, 0, name, genl.order()));
            try {
                return DeviceDump.decode(answer, familyId, genl.order());
            } catch (DeviceDump.Interrupted e) {
                if (attempt == DUMP_ATTEMPTS) {
                    throw new NetlinkException("WG_CMD_GET_DEVICE " + name, Errno.EINTR, null, e
                            .getMessage() + ", " + DUMP_ATTEMPTS + " times");
                }
            }
        }
    }

    private DeviceDump.State stateOrThrow() {
        try {
            return state();
        } catch (NativeException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public synchronized void setPrivateKey(Key key) {
        set(change(name, key == null ? ZERO_KEY : key, null, null, false, List.of(), List.of()), "private key");
        privateKey = key;
        keySetAt = Instant.now();
    }

    @Override
    public synchronized Key privateKey() {
        return privateKey;
    }

    /** Derived from the key this device last set (the dump's public key would cost a request). */
    @Override
    public Key publicKey() {
        Key k = privateKey();
        return k == null ? null : k.publicKey();
    }

    /** Remembered only: the kernel has one key, so handshakes to this one are not answered. */
    @Override
    public synchronized void setSecondaryKey(Key key) {
        if (key != null && (privateKey == null || key.equals(privateKey))) {
            throw new IllegalArgumentException(privateKey == null
                    ? "no private key is set"
                    : "the secondary key is the private key");
        }
        secondary = key;
    }

    @Override
    public synchronized Key secondaryPublicKey() {
        return secondary == null ? null : secondary.publicKey();
    }

    /** One step in the kernel: its key becomes the secondary one; every session is re-handshaken. */
    @Override
    public synchronized void swapKeys() {
        if (secondary == null) {
            throw new IllegalStateException("no secondary key to switch to");
        }
        Key old = privateKey;
        setPrivateKey(secondary);
        secondary = old;
    }

    /** A removal and an addition: the kernel keys a peer by its public key, so its sessions are lost. */
    @Override
    public synchronized boolean changePeerKey(Key from, Key to) {
        for (PeerStatus p : stateOrThrow().peers()) {
            if (p.publicKey().equals(from)) {
                set(change(name, null, null, null, false, List.of(new PeerConfig(to, null, p.endpoint(), p
                        .persistentKeepalive(), true, p.allowedIps())), List.of(from)), "peer key change");
                return true;
            }
        }
        return false;
    }

    /**
     * The kernel does not say which of our keys a handshake used; with one key, a handshake completed
     * after the key was last set used the current one, and only those are listed.
     */
    @Override
    public synchronized Map<Key, Key> handshakeKeys() {
        Map<Key, Key> out = new HashMap<>();
        Key current = publicKey();
        for (PeerStatus p : stateOrThrow().peers()) {
            if (current != null && p.lastHandshake() != null && !p.lastHandshake().isBefore(keySetAt)) {
                out.put(p.publicKey(), current);
            }
        }
        return out;
    }

    @Override
    public synchronized void setListenPort(int port) throws IOException {
        set(change(name, null, port, null, false, List.of(), List.of()), "listen port");
    }

    @Override
    public synchronized int listenPort() {
        return stateOrThrow().listenPort();
    }

    @Override
    public synchronized void setFwmark(int mark) throws IOException {
        set(change(name, null, null, mark, false, List.of(), List.of()), "fwmark");
    }

    @Override
    public synchronized int fwmark() {
        return stateOrThrow().fwmark();
    }

    @Override
    public synchronized void upsertPeer(PeerConfig peer) {
        requireNonNull(peer, "peer");
        set(change(name, null, null, null, false, List.of(peer), List.of()), "peer " + peer.publicKey().toBase64());
    }

    @Override
    public synchronized boolean removePeer(Key publicKey) {
        boolean present = stateOrThrow().peers().stream().anyMatch(p -> p.publicKey().equals(publicKey));
        if (present) {
            set(change(name, null, null, null, false, List.of(), List.of(publicKey)), "remove peer");
        }
        return present;
    }

    @Override
    public synchronized void removeAllPeers() {
        set(change(name, null, null, null, true, List.of(), List.of()), "remove all peers");
    }

    @Override
    public synchronized List<PeerStatus> peers() {
        return stateOrThrow().peers();
    }

    /** Not read back from the kernel here: {@code wg show} reads the kernel directly. */
    @Override
    public Key presharedKey(Key peer) {
        throw new UnsupportedOperationException("kernel WireGuard's preshared keys are not read back; use wg(8)");
    }

    /** Only the peer count: the kernel exports no handshake, drop or DH counters over netlink. */
    @Override
    public synchronized DeviceStats stats() {
        return new DeviceStats(0, 0, 0, 0, 0, 0, 0, stateOrThrow().peers().size(), 0, 0);
    }

    /** Kept but never called: kernel WireGuard has no upcall for unknown peers. */
    @Override
    public void setUnknownPeerHandler(UnknownPeerHandler handler) {
        requireNonNull(handler, "handler");
    }

    /** Deletes the link if this device created it; an adopted one is left without key or peers. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (created) {
                RtNetlink.deleteLink(route, ifindex);
            } else {
                set(change(name, ZERO_KEY, null, null, true, List.of(), List.of()), "clear on close");
            }
        } catch (NativeException | UncheckedIOException e) {
            LOG.warn("kernel WireGuard {}: not removed on close: {}", name, e.getMessage());
        } finally {
            privateKey = null;
            secondary = null;
            try {
                sockets.close();
            } catch (Exception e) {
                LOG.warn("kernel WireGuard {}: closing its netlink sockets: {}", name, e.getMessage());
            }
        }
    }
}
