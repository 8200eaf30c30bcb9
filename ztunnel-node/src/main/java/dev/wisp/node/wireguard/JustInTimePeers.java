package dev.wisp.node.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.wireguard.PeerPlan.PeerSpec;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.UnknownPeerHandler;
import dev.wisp.wireguard.WireGuardDevice;
import dev.wisp.wireguard.routing.AllowedIps;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;

/**
 * Just-in-time peers on the node's device: the device starts with none; a peer is installed when
 * another node first sends a valid handshake initiation with a key that the registry (the Node
 * resources from the control plane) holds, or when a packet from this node goes to a pod CIDR of a
 * registered node; a peer whose byte counters did not move for the idle time is removed. So the
 * device holds the nodes this node talks to, not the whole cluster.
 *
 * <p>Only registered nodes are ever installed, with their registered key, endpoint and pod CIDRs:
 * an initiation proves the sender holds the private key of the public key it names, and the registry
 * says which node that key belongs to, so nothing a packet says widens what a peer may send.
 *
 * <p>Threads: the hooks ({@link #onInitiation}, {@link #onPacketTo}) run on the device's handshake
 * and TUN threads and only read the registry (an immutable snapshot behind a volatile) and the
 * concurrent map of installed peers; {@link #update} and {@link #reap} are serialised on this
 * object (the Node-resource listener, the reaper thread). A peer removed while a packet installs it
 * again is installed again by the next packet, which finds no peer on the device.
 */
final class JustInTimePeers implements UnknownPeerHandler {
    /** Which side spoke first. */
    enum Direction {
        /** The other node's handshake initiation. */
        INBOUND,
        /** A packet from this node. */
        OUTBOUND,
        /**
         * Neither: installed because it is registered ({@link #installAll}), on kernel WireGuard, which
         * has no upcall for an unknown peer or an unrouted packet.
         */
        REGISTERED
    }

    /** Told of installs and removals (logs and per-peer metrics); called on the device's threads too. */
    interface Listener {
        void installed(PeerSpec peer, Direction direction);

        /** An installed peer's node rotated its key: the peer now has {@code peer}'s key. */
        void rekeyed(Key old, PeerSpec peer);

        void removed(PeerSpec peer, String why);
    }

    private record Registry(Map<Key, PeerSpec> byKey, AllowedIps<PeerSpec> byAddress) {
        static Registry of(List<PeerSpec> peers) {
            Map<Key, PeerSpec> byKey = new HashMap<>();
            AllowedIps<PeerSpec> byAddress = new AllowedIps<>();
            for (PeerSpec p : peers) {
                byKey.put(p.publicKey(), p);
                for (Prefix a : p.sentTo()) {
                    byAddress.insert(a.address(), a.length(), p);
                }
            }
            return new Registry(Map.copyOf(byKey), byAddress);
        }
    }

    /** An installed peer: its spec, and when its byte count last moved. */
    private static final class Installed {
        volatile PeerSpec spec;
        long bytes = -1;
        long activeNanos;

        Installed(PeerSpec spec, long now) {
            this.spec = spec;
            this.activeNanos = now;
        }
    }

    private final WireGuardDevice device;
    private final LongSupplier nanos;
    private final Listener listener;
    private final Map<Key, Installed> installed = new ConcurrentHashMap<>();
    private final LongAdder inboundInstalls = new LongAdder();
    private final LongAdder outboundInstalls = new LongAdder();
    private final LongAdder registeredInstalls = new LongAdder();
    private final LongAdder reaps = new LongAdder();
    private volatile Registry registry = Registry.of(List.of());
    private volatile Duration idle;
    /** Guarded by this: the entry last sent for each node. */
    private Map<String, PeerSpec> lastByNode = Map.of();

    JustInTimePeers(WireGuardDevice device, Duration idle, LongSupplier nanos, Listener listener) {
        this.device = requireNonNull(device, "device");
        this.idle = requireNonNull(idle, "idle");
        this.nanos = requireNonNull(nanos, "nanos");
        this.listener = requireNonNull(listener, "listener");
    }

    @Override
    public Optional<PeerConfig> onInitiation(Key publicKey, InetSocketAddress source) {
        return admit(registry.byKey().get(publicKey), Direction.INBOUND);
    }

    @Override
    public Optional<PeerConfig> onPacketTo(InetAddress destination) {
        return admit(registry.byAddress().lookup(destination), Direction.OUTBOUND);
    }

    private Optional<PeerConfig> admit(PeerSpec spec, Direction direction) {
        if (spec == null) {
            return Optional.empty();
        }
        if (installed.putIfAbsent(spec.publicKey(), new Installed(spec, nanos.getAsLong())) == null) {
            installCounter(direction).increment();
            listener.installed(spec, direction);
        }
        return Optional.of(config(spec));
    }

    private static PeerConfig config(PeerSpec spec) {
        return PeerConfig.of(spec.publicKey(), spec.endpoint(), spec.allowedIps());
    }

    /**
     * Takes the registry's new content ({@code peers}: every other node with a key) and the idle
     * time; installed peers that left the registry are removed, those whose entry changed updated.
     * A node in {@code keyless} (its Node resource is there, without a key: a restarted control plane
     * that has not heard from that node's agent yet) keeps the last entry the control plane sent for
     * it, so traffic goes on with the last peers while the registry is rebuilt.
     */
    synchronized void update(List<PeerSpec> peers, Set<String> keyless, Duration idleTime) {
        List<PeerSpec> kept = new ArrayList<>(peers);
        Set<Key> keys = new HashSet<>();
        peers.forEach(p -> keys.add(p.publicKey()));
        Map<String, PeerSpec> last = new HashMap<>();
        for (PeerSpec p : peers) {
            last.put(p.node(), p);
        }
        for (String node : keyless) {
            PeerSpec before = lastByNode.get(node);
            if (before != null && keys.add(before.publicKey())) {
                kept.add(before);
                last.put(node, before);
            }
        }
        lastByNode = last;
        Registry next = Registry.of(kept);
        // Before the new registry is used: a node that rotated its key keeps its installed peer and
        // sessions under the new key, so neither its packets nor ours are dropped meanwhile.
        for (var e : new ArrayList<>(installed.entrySet())) {
            PeerSpec moved = last.get(e.getValue().spec.node());
            if (next.byKey().get(e.getKey()) == null && moved != null && !installed.containsKey(moved.publicKey())
                    && device.changePeerKey(e.getKey(), moved.publicKey())) {
                installed.remove(e.getKey());
                installed.put(moved.publicKey(), e.getValue());
                listener.rekeyed(e.getKey(), moved);
            }
        }
        registry = next;
        idle = requireNonNull(idleTime, "idleTime");
        for (var e : new ArrayList<>(installed.entrySet())) {
            PeerSpec now = next.byKey().get(e.getKey());
            if (now == null) {
                remove(e.getKey(), "its node no longer has this key registered");
            } else if (!now.equals(e.getValue().spec)) {
                e.getValue().spec = now;
                device.upsertPeer(config(now));
            }
        }
    }

    /** Removes every installed peer whose bytes sent and received did not move for the idle time. */
    synchronized void reap() {
        Map<Key, Long> bytes = new HashMap<>();
        for (PeerStatus s : device.peers()) {
            bytes.put(s.publicKey(), s.rxBytes() + s.txBytes());
        }
        long now = nanos.getAsLong();
        long idleNanos = idle.toNanos();
        for (var e : new ArrayList<>(installed.entrySet())) {
            Installed p = e.getValue();
            long b = bytes.getOrDefault(e.getKey(), p.bytes);
            if (b != p.bytes) {
                p.bytes = b;
                p.activeNanos = now;
            } else if (now - p.activeNanos >= idleNanos) {
                reaps.increment();
                remove(e.getKey(), "idle for " + idle.toSeconds() + " s");
            }
        }
    }

    private void remove(Key key, String why) {
        Installed p = installed.remove(key);
        if (p != null) {
            device.removePeer(key);
            listener.removed(p.spec, why);
        }
    }

    /** Installed peers now. */
    int size() {
        return installed.size();
    }

    long installs(Direction direction) {
        return installCounter(direction).sum();
    }

    private LongAdder installCounter(Direction direction) {
        return switch (direction) {
            case INBOUND -> inboundInstalls;
            case OUTBOUND -> outboundInstalls;
            case REGISTERED -> registeredInstalls;
        };
    }

    /**
     * Installs every registered node that is not installed yet: for a device that never asks
     * (kernel WireGuard has no upcall), so its peers are the whole registry and are not reaped.
     */
    synchronized void installAll() {
        for (PeerSpec spec : registry.byKey().values()) {
            if (!installed.containsKey(spec.publicKey())) {
                admit(spec, Direction.REGISTERED).ifPresent(device::upsertPeer);
            }
        }
    }

    long reaps() {
        return reaps.sum();
    }
}
