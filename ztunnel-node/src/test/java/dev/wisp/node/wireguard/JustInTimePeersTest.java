package dev.wisp.node.wireguard;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.api.workload.v1.Node;
import dev.wisp.wireguard.DeviceStats;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.UnknownPeerHandler;
import dev.wisp.wireguard.WireGuardDevice;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Just-in-time peers against a recording device: installs from an initiation or a packet, only for
 * registered nodes; idle peers reaped and installed again by traffic; registry changes; and with
 * 1,000 nodes registered, a node that talks to 3 holds 3 peers.
 */
class JustInTimePeersTest {
    static final List<Prefix> OWN = List.of(Prefix.parse("10.9.0.0/28"));
    static final List<Prefix> CLUSTER = List.of(Prefix.parse("10.9.0.0/16"));
    static final Duration IDLE = Duration.ofSeconds(30);

    /**
     * A device that only keeps its peers and keys and lets the test set the peers' byte counts and
     * the key of their last handshake.
     */
    static final class RecordingDevice implements WireGuardDevice {
        final Map<Key, PeerConfig> peers = new LinkedHashMap<>();
        final Map<Key, Long> bytes = new LinkedHashMap<>();
        final Map<Key, Key> handshakeKeys = new LinkedHashMap<>();
        final List<String> calls = new ArrayList<>();
        Key privateKey;
        Key secondary;

        @Override
        public synchronized void upsertPeer(PeerConfig peer) {
            peers.put(peer.publicKey(), peer);
            calls.add("upsert " + peer.endpoint());
        }

        @Override
        public synchronized boolean removePeer(Key publicKey) {
            calls.add("remove");
            bytes.remove(publicKey);
            return peers.remove(publicKey) != null;
        }

        @Override
        public synchronized boolean changePeerKey(Key from, Key to) {
            PeerConfig p = peers.remove(from);
            if (p == null) {
                return false;
            }
            calls.add("rekey");
            peers.put(to, new PeerConfig(to, p.presharedKey(), p.endpoint(), p.persistentKeepalive(), p
                    .replaceAllowedIps(), p.allowedIps()));
            return true;
        }

        @Override
        public synchronized void setSecondaryKey(Key privateKey) {
            secondary = privateKey;
        }

        @Override
        public synchronized Key secondaryPublicKey() {
            return secondary == null ? null : secondary.publicKey();
        }

        @Override
        public synchronized void swapKeys() {
            Key k = privateKey;
            privateKey = secondary;
            secondary = k;
        }

        @Override
        public synchronized Map<Key, Key> handshakeKeys() {
            return Map.copyOf(handshakeKeys);
        }

        @Override
        public synchronized List<PeerStatus> peers() {
            return peers.values().stream().map(p -> new PeerStatus(p.publicKey(), false, p.endpoint(), null, bytes
                    .getOrDefault(p.publicKey(), 0L), 0, null, p.allowedIps())).toList();
        }

        /** What the device does with a hook's answer: installs the config. */
        void take(Optional<PeerConfig> config) {
            config.ifPresent(this::upsertPeer);
        }

        @Override
        public String name() {
            return "wg-test";
        }

        @Override
        public synchronized void setPrivateKey(Key privateKey) {
            this.privateKey = privateKey;
        }

        @Override
        public synchronized Key privateKey() {
            return privateKey;
        }

        @Override
        public synchronized Key publicKey() {
            return privateKey == null ? null : privateKey.publicKey();
        }

        @Override
        public void setListenPort(int port) {}

        @Override
        public int listenPort() {
            return 51820;
        }

        @Override
        public void setFwmark(int mark) {}

        @Override
        public int fwmark() {
            return 0;
        }

        @Override
        public void removeAllPeers() {
            peers.clear();
        }

        @Override
        public Key presharedKey(Key peer) {
            return null;
        }

        @Override
        public DeviceStats stats() {
            return new DeviceStats(0, 0, 0, 0, 0, 0, 0, peers.size(), 0, 0);
        }

        @Override
        public void setUnknownPeerHandler(UnknownPeerHandler handler) {}

        @Override
        public void close() {}
    }

    final RecordingDevice device = new RecordingDevice();
    final List<String> events = new ArrayList<>();
    long now = 1_000_000_000L;
    final JustInTimePeers jit = new JustInTimePeers(device, IDLE, () -> now, new JustInTimePeers.Listener() {
        @Override
        public void installed(PeerPlan.PeerSpec peer, JustInTimePeers.Direction direction) {
            events.add("installed " + peer.node() + " " + direction);
        }

        @Override
        public void rekeyed(Key old, PeerPlan.PeerSpec peer) {
            events.add("rekeyed " + peer.node());
        }

        @Override
        public void removed(PeerPlan.PeerSpec peer, String why) {
            events.add("removed " + peer.node() + ": " + why);
        }
    });

    /** Node {@code i} (1-based): address 10.8.x.y, pod CIDR 10.9.i/28 ... inside the cluster CIDR. */
    static Node node(int i, Key key) {
        int cidr = i * 16;
        return PeerPlanTest.node("n" + i, "10.8." + (i >> 8) + "." + (i & 0xff), key.toBase64(), "10.8." + (i >> 8)
                + "." + (i & 0xff) + ":51820", "10.9." + (cidr >> 8) + "." + (cidr & 0xff) + "/28", false);
    }

    static InetAddress podOf(int i) {
        int a = i * 16 + 5;
        return InetAddress.ofLiteral("10.9." + (a >> 8) + "." + (a & 0xff));
    }

    static final int NODES = 1000;
    static final Key[] KEYS = new Key[NODES + 1];

    static {
        for (int i = 1; i <= NODES; i++) {
            KEYS[i] = Key.generatePrivate().publicKey();
        }
    }

    void register(int nodes) {
        List<Node> all = new ArrayList<>();
        all.add(PeerPlanTest.node("self", "10.8.0.0", "", "", "10.9.0.0/28", false));
        for (int i = 1; i <= nodes; i++) {
            all.add(node(i, KEYS[i]));
        }
        jit.update(PeerPlan.of("self", all, OWN, CLUSTER, true).peers(), Set.of(), IDLE);
    }

    static InetSocketAddress source(int i) {
        return new InetSocketAddress("10.8." + (i >> 8) + "." + (i & 0xff), 51820);
    }

    @Test
    void theDeviceStartsEmptyAndTheFirstPacketOrInitiationInstallsTheRegisteredPeer() {
        register(3);
        assertThat(device.peers).isEmpty();
        device.take(jit.onPacketTo(podOf(1)));
        device.take(jit.onInitiation(KEYS[2], source(2)));
        assertThat(device.peers.keySet()).containsExactlyInAnyOrder(KEYS[1], KEYS[2]);
        assertThat(device.peers.get(KEYS[2]).endpoint()).as("the registered endpoint").isEqualTo(source(2));
        assertThat(device.peers.get(KEYS[2]).allowedIps()).containsExactly(Prefix.parse("10.9.0.32/28"), Prefix
                .parse("10.8.0.2/32"));
        assertThat(events).containsExactly("installed n1 OUTBOUND", "installed n2 INBOUND");
        assertThat(jit.installs(JustInTimePeers.Direction.OUTBOUND)).isEqualTo(1);
        assertThat(jit.installs(JustInTimePeers.Direction.INBOUND)).isEqualTo(1);
        // A second packet to an installed peer is not a second install.
        device.take(jit.onPacketTo(podOf(1)));
        assertThat(jit.installs(JustInTimePeers.Direction.OUTBOUND)).isEqualTo(1);
        assertThat(jit.size()).isEqualTo(2);
    }

    @Test
    void forKernelWireGuardEveryRegisteredNodeIsInstalledOnceAndFollowsTheRegistry() {
        register(3);
        jit.installAll();
        assertThat(device.peers.keySet()).containsExactlyInAnyOrder(KEYS[1], KEYS[2], KEYS[3]);
        assertThat(jit.installs(JustInTimePeers.Direction.REGISTERED)).isEqualTo(3);
        assertThat(events).containsExactlyInAnyOrder("installed n1 REGISTERED", "installed n2 REGISTERED",
                "installed n3 REGISTERED");
        jit.installAll();
        assertThat(device.calls).as("installed peers are not installed again").hasSize(3);
        register(4);
        jit.installAll();
        assertThat(device.peers.keySet()).containsExactlyInAnyOrder(KEYS[1], KEYS[2], KEYS[3], KEYS[4]);
        assertThat(jit.installs(JustInTimePeers.Direction.REGISTERED)).isEqualTo(4);
        assertThat(jit.installs(JustInTimePeers.Direction.INBOUND) + jit.installs(JustInTimePeers.Direction.OUTBOUND))
                .isZero();
    }

    @Test
    void unregisteredKeysAndAddressesOutsideEveryNodesPodCidrInstallNothing() {
        register(3);
        assertThat(jit.onInitiation(Key.generatePrivate().publicKey(), source(1))).isEmpty();
        assertThat(jit.onPacketTo(InetAddress.ofLiteral("10.9.200.1"))).isEmpty();
        assertThat(jit.onPacketTo(InetAddress.ofLiteral("10.8.0.1"))).as("a node address is not a pod CIDR").isEmpty();
        assertThat(jit.onPacketTo(InetAddress.ofLiteral("10.9.0.5"))).as("this node's own pods").isEmpty();
        assertThat(jit.size()).isZero();
        assertThat(events).isEmpty();
    }

    @Test
    void aPeerThatMovesNoBytesForTheIdleTimeIsRemovedAndTrafficInstallsItAgain() {
        register(3);
        device.take(jit.onPacketTo(podOf(1)));
        device.take(jit.onPacketTo(podOf(2)));
        jit.reap();
        for (int s = 0; s < 29; s++) {
            now += Duration.ofSeconds(1).toNanos();
            device.bytes.merge(KEYS[1], 100L, Long::sum);
            jit.reap();
        }
        assertThat(jit.size()).as("before the idle time").isEqualTo(2);
        now += Duration.ofSeconds(1).toNanos();
        jit.reap();
        assertThat(device.peers.keySet()).as("n2 idle for 30 s, n1 busy").containsExactly(KEYS[1]);
        assertThat(events).contains("removed n2: idle for 30 s");
        assertThat(jit.reaps()).isEqualTo(1);
        now += IDLE.toNanos();
        jit.reap();
        assertThat(device.peers).isEmpty();
        assertThat(jit.reaps()).isEqualTo(2);
        device.take(jit.onInitiation(KEYS[2], source(2)));
        assertThat(device.peers.keySet()).containsExactly(KEYS[2]);
        assertThat(jit.installs(JustInTimePeers.Direction.INBOUND)).isEqualTo(1);
    }

    @Test
    void anInstalledPeerFollowsItsRegistryEntryAndGoesWhenItsNodeLeavesTheRegistry() {
        register(3);
        device.take(jit.onPacketTo(podOf(1)));
        device.take(jit.onPacketTo(podOf(2)));
        List<Node> changed = new ArrayList<>();
        changed.add(PeerPlanTest.node("n1", "10.8.9.9", KEYS[1].toBase64(), "10.8.9.9:51821", "10.9.0.16/28",
                false));
        jit.update(PeerPlan.of("self", changed, OWN, CLUSTER, true).peers(), Set.of(), IDLE);
        assertThat(device.peers.keySet()).containsExactly(KEYS[1]);
        assertThat(device.peers.get(KEYS[1]).endpoint()).isEqualTo(new InetSocketAddress("10.8.9.9", 51821));
        assertThat(events).contains("removed n2: its node no longer has this key registered");
        assertThat(jit.reaps()).as("not an idle reap").isZero();
    }

    @Test
    void aNodeWhoseResourceLostItsKeyKeepsTheLastEntryUntilItIsGoneOrReplaced() {
        register(3);
        device.take(jit.onPacketTo(podOf(1)));
        // A restarted control plane sends n1 and n2 without keys until their agents reconnect.
        jit.update(List.of(), Set.of("n1", "n2"), IDLE);
        assertThat(device.peers.keySet()).as("n1 stays installed").containsExactly(KEYS[1]);
        device.take(jit.onInitiation(KEYS[2], source(2)));
        assertThat(device.peers.keySet()).as("n2 still found by its last key").contains(KEYS[2]);
        // n1's Node resource is gone: its peer goes.
        jit.update(List.of(), Set.of("n2"), IDLE);
        assertThat(device.peers.keySet()).containsExactly(KEYS[2]);
        // n2 registers a new key (a rotation): its installed peer takes it, keeping its sessions on the
        // device; the old key is no longer admitted.
        Key fresh = Key.generatePrivate().publicKey();
        device.calls.clear();
        jit.update(List.of(new PeerPlan.PeerSpec("n2", fresh, source(2), List.of(Prefix.parse("10.9.0.32/28")),
                List.of(Prefix.parse("10.9.0.32/28")))),
                Set.of(), IDLE);
        assertThat(device.peers.keySet()).containsExactly(fresh);
        assertThat(device.calls).contains("rekey").doesNotContain("remove");
        assertThat(events).contains("rekeyed n2");
        assertThat(jit.onInitiation(KEYS[2], source(2))).isEmpty();
        assertThat(jit.onInitiation(fresh, source(2))).isPresent();
        assertThat(jit.size()).isEqualTo(1);
    }

    @Test
    void withAThousandNodesRegisteredANodeThatTalksToThreeHoldsThreePeers() {
        register(NODES);
        device.take(jit.onPacketTo(podOf(17)));
        device.take(jit.onPacketTo(podOf(17)));
        device.take(jit.onPacketTo(podOf(503)));
        device.take(jit.onInitiation(KEYS[999], source(999)));
        device.take(jit.onInitiation(KEYS[999], source(999)));
        assertThat(device.peers.keySet()).containsExactlyInAnyOrder(KEYS[17], KEYS[503], KEYS[999]);
        assertThat(jit.size()).isEqualTo(3);
        // A registry refresh with all 1,000 nodes keeps the three and adds none.
        register(NODES);
        assertThat(device.peers).hasSize(3);
    }
}
