package dev.wisp.wireguard.netlink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.linux.NativeException;
import dev.wisp.linux.NetlinkAttributes;
import dev.wisp.linux.NetlinkChannel;
import dev.wisp.linux.NetlinkMessage;
import dev.wisp.linux.NetlinkWriter;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link KernelWireGuard}'s {@code WireGuardDevice} semantics against a scripted kernel: a stand-in
 * that applies each {@code WG_CMD_SET_DEVICE} it receives (decoding it with the attribute numbers of
 * {@code <linux/wireguard.h>} written as literals) and answers {@code WG_CMD_GET_DEVICE} with a dump
 * of one message per peer, as the kernel may split it. Not the kernel: what the real module does
 * with these messages has never run here (no machine has the module).
 */
class KernelWireGuardScriptedTest {
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    static final int FAMILY = 0x1c;
    static final Key K1 = Key.generatePrivate();
    static final Key K2 = Key.generatePrivate();
    static final Key P1 = Key.generatePrivate().publicKey();
    static final Key P2 = Key.generatePrivate().publicKey();
    static final Key P3 = Key.generatePrivate().publicKey();

    /** One peer as the scripted kernel holds it. */
    static final class Peer {
        byte[] endpoint;
        int keepalive;
        final List<byte[]> allowed = new ArrayList<>();
        Instant handshake;
    }

    /** The scripted kernel: one interface's key, port, fwmark and peers. */
    static final class ScriptedKernel implements NetlinkChannel {
        final Map<Key, Peer> peers = new LinkedHashMap<>();
        final List<String> requests = new ArrayList<>();
        byte[] privateKey = new byte[32];
        int port;
        int fwmark;
        int interruptions;

        @Override
        public ByteOrder order() {
            return LE;
        }

        @Override
        public List<NetlinkMessage> request(String what, byte[] message) throws NativeException {
            ByteBuffer b = ByteBuffer.wrap(message).order(LE);
            int type = b.getShort(4);
            int flags = b.getShort(6);
            NetlinkMessage m = new NetlinkMessage(type, flags, 0, Arrays.copyOfRange(message, 16, message.length));
            requests.add(what);
            if (type == 17) { // RTM_DELLINK
                return List.of();
            }
            assertThat(type).isEqualTo(FAMILY);
            NetlinkAttributes a = m.attributes(4, LE, what);
            assertThat(a.first(2).string()).as("WGDEVICE_A_IFNAME").isEqualTo("wisp-k0");
            if (m.genlCommand() == 0) {
                assertThat(flags & NetlinkWriter.NLM_F_DUMP).as("GET_DEVICE must be a dump").isEqualTo(
                        NetlinkWriter.NLM_F_DUMP);
                return dump();
            }
            set(a);
            return List.of();
        }

        private void set(NetlinkAttributes a) throws NativeException {
            for (NetlinkAttributes.Attribute x : a.all()) {
                switch (x.type()) {
                    case 3 -> privateKey = x.bytes(32);
                    case 5 -> {
                        if ((x.u32() & 1) != 0) {
                            peers.clear();
                        }
                    }
                    case 6 -> port = x.u16();
                    case 7 -> fwmark = x.u32();
                    case 8 -> {
                        for (NetlinkAttributes.Attribute p : x.nested().all()) {
                            peer(p.nested());
                        }
                    }
                    default -> {}
                }
            }
        }

        private void peer(NetlinkAttributes p) throws NativeException {
            Key key = Key.of(p.first(1).bytes(32));
            NetlinkAttributes.Attribute flags = p.first(3);
            int f = flags == null ? 0 : flags.u32();
            if ((f & 1) != 0) {
                peers.remove(key);
                return;
            }
            Peer peer = peers.computeIfAbsent(key, k -> new Peer());
            if ((f & 2) != 0) {
                peer.allowed.clear();
            }
            if (p.first(4) != null) {
                peer.endpoint = p.first(4).bytes();
            }
            if (p.first(5) != null) {
                peer.keepalive = p.first(5).u16();
            }
            if (p.first(9) != null) {
                for (NetlinkAttributes.Attribute ip : p.first(9).nested().all()) {
                    NetlinkAttributes e = ip.nested();
                    peer.allowed.add(e.first(2).bytes());
                    peer.allowed.add(new byte[]{(byte) e.first(3).u8()});
                }
            }
        }

        private List<NetlinkMessage> dump() {
            int flags = NetlinkWriter.NLM_F_MULTI | (interruptions > 0 ? DeviceDump.NLM_F_DUMP_INTR : 0);
            if (interruptions > 0) {
                interruptions--;
            }
            List<NetlinkMessage> out = new ArrayList<>();
            NetlinkWriter first = NetlinkWriter.genl(LE, FAMILY, flags, 0, 0, 1).u16(6, port).u32(7, fwmark).u32(1, 9)
                    .string(2, "wisp-k0").bytes(3, privateKey);
            out.add(message(first));
            for (var e : peers.entrySet()) {
                Peer p = e.getValue();
                NetlinkWriter w = NetlinkWriter.genl(LE, FAMILY, flags, 0, 0, 1).begin(8).begin(0).bytes(1, e.getKey()
                        .bytes()).u16(5, p.keepalive).bytes(6, ByteBuffer.allocate(16).order(LE)
                                .putLong(
                                        p.handshake == null ? 0 : p.handshake.getEpochSecond())
                                .putLong(0).array());
                if (p.endpoint != null) {
                    w.bytes(4, p.endpoint);
                }
                w.begin(9);
                for (int i = 0; i < p.allowed.size(); i += 2) {
                    byte[] ip = p.allowed.get(i);
                    w.begin(0).u16(1, ip.length == 4 ? 2 : 10).bytes(2, ip).u8(3, p.allowed.get(i + 1)[0]).end();
                }
                w.end().end().end();
                out.add(message(w));
            }
            return out;
        }

        static NetlinkMessage message(NetlinkWriter w) {
            byte[] all = w.finish();
            ByteBuffer b = ByteBuffer.wrap(all).order(LE);
            return new NetlinkMessage(b.getShort(4), b.getShort(6), 0, Arrays.copyOfRange(all, 16, all.length));
        }
    }

    final ScriptedKernel genl = new ScriptedKernel();
    final ScriptedKernel route = new ScriptedKernel();

    KernelWireGuard device(boolean created) {
        return new KernelWireGuard("wisp-k0", genl, route, () -> {}, FAMILY, 9, created);
    }

    static PeerConfig peer(Key key, String endpoint, String... allowed) {
        return new PeerConfig(key, null, new InetSocketAddress(InetAddress.ofLiteral(endpoint), 51820), Duration
                .ofSeconds(25), true, Arrays.stream(allowed).map(Prefix::parse).toList());
    }

    @Test
    void whatIsSetIsWhatTheDumpReportsAsPeerStatus() throws Exception {
        KernelWireGuard wg = device(true);
        wg.setPrivateKey(K1);
        wg.setListenPort(51820);
        wg.setFwmark(0x51);
        wg.upsertPeer(peer(P1, "192.0.2.1", "10.1.0.0/16", "fd00:1::/64"));
        wg.upsertPeer(peer(P2, "2001:db8::2"));
        assertThat(genl.privateKey).isEqualTo(K1.bytes());
        assertThat(wg.publicKey()).isEqualTo(K1.publicKey());
        assertThat(wg.listenPort()).isEqualTo(51820);
        assertThat(wg.fwmark()).isEqualTo(0x51);
        assertThat(wg.peers()).containsExactly(new PeerStatus(P1, false, new InetSocketAddress(InetAddress.ofLiteral(
                "192.0.2.1"), 51820), null, 0, 0, Duration.ofSeconds(25), List.of(Prefix.parse("10.1.0.0/16"),
                        Prefix
                                .parse("fd00:1::/64"))),
                new PeerStatus(P2, false, new InetSocketAddress(InetAddress.ofLiteral(
                        "2001:db8::2"), 51820), null, 0, 0, Duration.ofSeconds(25), List.of()));
        assertThat(wg.stats().peers()).isEqualTo(2);
        assertThat(wg.removePeer(P1)).isTrue();
        assertThat(wg.removePeer(P1)).as("already gone").isFalse();
        assertThat(wg.peers()).extracting(PeerStatus::publicKey).containsExactly(P2);
        wg.removeAllPeers();
        assertThat(wg.peers()).isEmpty();
        wg.close();
        assertThat(route.requests).containsExactly("RTM_DELLINK index 9");
        assertThat(wg.privateKey()).isNull();
    }

    @Test
    void aPeersKeyChangeIsARemovalAndAnAdditionKeepingItsConfiguration() {
        KernelWireGuard wg = device(false);
        wg.setPrivateKey(K1);
        wg.upsertPeer(peer(P1, "192.0.2.1", "10.1.0.0/16"));
        assertThat(wg.changePeerKey(P1, P3)).isTrue();
        assertThat(wg.peers()).singleElement().satisfies(p -> {
            assertThat(p.publicKey()).isEqualTo(P3);
            assertThat(p.endpoint()).isEqualTo(new InetSocketAddress(InetAddress.ofLiteral("192.0.2.1"), 51820));
            assertThat(p.allowedIps()).containsExactly(Prefix.parse("10.1.0.0/16"));
        });
        assertThat(wg.changePeerKey(P1, P2)).as("no such peer").isFalse();
        wg.close();
        assertThat(route.requests).as("an adopted link is not deleted").isEmpty();
        assertThat(genl.privateKey).as("but left without its key").isEqualTo(new byte[32]);
        assertThat(genl.peers).isEmpty();
    }

    @Test
    void aRotationSwitchesTheKernelsOneKeyAndCountsOnlyHandshakesSinceThen() throws Exception {
        KernelWireGuard wg = device(true);
        wg.setPrivateKey(K1);
        wg.upsertPeer(peer(P1, "192.0.2.1"));
        wg.upsertPeer(peer(P2, "192.0.2.2"));
        wg.setSecondaryKey(K2);
        assertThat(genl.privateKey).as("the kernel keeps one key: the secondary is only remembered")
                .isEqualTo(K1.bytes());
        assertThat(wg.secondaryPublicKey()).isEqualTo(K2.publicKey());
        genl.peers.get(P1).handshake = Instant.now().minusSeconds(60);
        wg.swapKeys();
        assertThat(genl.privateKey).isEqualTo(K2.bytes());
        assertThat(wg.publicKey()).isEqualTo(K2.publicKey());
        assertThat(wg.secondaryPublicKey()).isEqualTo(K1.publicKey());
        assertThat(wg.handshakeKeys()).as("P1's handshake was before the switch").isEmpty();
        genl.peers.get(P2).handshake = Instant.now().plusSeconds(2);
        assertThat(wg.handshakeKeys()).containsExactly(Map.entry(P2, K2.publicKey()));
        wg.setSecondaryKey(null);
        assertThat(wg.secondaryPublicKey()).isNull();
        assertThatThrownBy(wg::swapKeys).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> wg.setSecondaryKey(K2)).as("the secondary cannot be the key in use")
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aDumpInterruptedByAPeerChangeIsDoneAgainAndGivesUpAfterFive() {
        KernelWireGuard wg = device(true);
        wg.upsertPeer(peer(P1, "192.0.2.1"));
        genl.interruptions = 2;
        int before = genl.requests.size();
        assertThat(wg.peers()).hasSize(1);
        assertThat(genl.requests.size() - before).as("three dumps").isEqualTo(3);
        genl.interruptions = KernelWireGuard.DUMP_ATTEMPTS;
        assertThatThrownBy(wg::peers).isInstanceOf(UncheckedIOException.class).hasMessageContaining(
                "WG_CMD_GET_DEVICE wisp-k0 failed: EINTR").hasMessageContaining("5 times");
    }
}
