package dev.wisp.wireguard.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.Timers;
import dev.wisp.wireguard.UnknownPeerHandler;
import dev.wisp.wireguard.noise.Messages;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Two protocol cores wired back to back through in-memory queues, with a manual clock: handshakes,
 * data both ways, timers, replay, cookies, roaming and just-in-time peers without any I/O.
 */
class DeviceCoreTest {
    static final class ManualClock implements Clock {
        long nanos = 1_000_000_000L;
        Instant wall = Instant.parse("2026-01-01T00:00:00Z");

        void advance(Duration d) {
            nanos += d.toNanos();
            wall = wall.plus(d);
        }

        @Override
        public long nanoTime() {
            return nanos;
        }

        @Override
        public Instant now() {
            return wall;
        }
    }

    record Datagram(InetSocketAddress to, byte[] data) {}

    static final class QueueIo implements Io {
        final ArrayDeque<Datagram> udp = new ArrayDeque<>();
        final List<byte[]> tun = new ArrayList<>();

        @Override
        public synchronized void sendUdp(InetSocketAddress to, byte[] buf, int off, int len) {
            udp.add(new Datagram(to, Arrays.copyOfRange(buf, off, off + len)));
        }

        @Override
        public synchronized void writeTun(byte[] buf, int off, int len) {
            tun.add(Arrays.copyOfRange(buf, off, off + len));
        }
    }

    static final InetSocketAddress A_ADDR = new InetSocketAddress(InetAddress.getLoopbackAddress(), 1001);
    static final InetSocketAddress B_ADDR = new InetSocketAddress(InetAddress.getLoopbackAddress(), 1002);

    final ManualClock clock = new ManualClock();
    final QueueIo aIo = new QueueIo();
    final QueueIo bIo = new QueueIo();
    final Key aKey = Key.generatePrivate();
    final Key bKey = Key.generatePrivate();
    DeviceCore a;
    DeviceCore b;
    InetSocketAddress aSource = A_ADDR;

    /** Most tests run on the default timers without a preshared key. */
    @BeforeEach
    void defaultPair() {
        setUp(Timers.DEFAULTS, null);
    }

    /** Replaces the two cores with a pair on {@code timers}, sharing {@code psk} (or none when null). */
    void setUp(Timers timers, Key psk) {
        a = new DeviceCore(clock, aIo, timers);
        b = new DeviceCore(clock, bIo, timers);
        a.setPrivateKey(aKey);
        b.setPrivateKey(bKey);
        a.upsertPeer(new PeerConfig(bKey.publicKey(), psk, B_ADDR, null, true, List.of(Prefix.parse("10.0.0.2/32"))));
        b.upsertPeer(new PeerConfig(aKey.publicKey(), psk, null, null, true, List.of(Prefix.parse("10.0.0.1/32"))));
    }

    static byte[] ipv4(String src, String dst, int payload) throws Exception {
        byte[] p = new byte[20 + payload];
        p[0] = 0x45;
        p[2] = (byte) (p.length >>> 8);
        p[3] = (byte) p.length;
        p[9] = 17;
        System.arraycopy(InetAddress.getByName(src).getAddress(), 0, p, 12, 4);
        System.arraycopy(InetAddress.getByName(dst).getAddress(), 0, p, 16, 4);
        for (int i = 20; i < p.length; i++) {
            p[i] = (byte) i;
        }
        return p;
    }

    /** A's application sends B a 10-byte IPv4 packet (what starts a handshake when A has no session). */
    void aSendsToB() throws Exception {
        fromTun(a, ipv4("10.0.0.1", "10.0.0.2", 10));
    }

    void bSendsToA() throws Exception {
        fromTun(b, ipv4("10.0.0.2", "10.0.0.1", 10));
    }

    /** Devices that rekey after 10 s, with a session B started: B is the side that rekeys on its own. */
    void sessionStartedByBThatRekeysAfter10s() throws Exception {
        setUp(Timers.forTestsWithRekeyAfter(Duration.ofSeconds(10)), null);
        b.upsertPeer(PeerConfig.of(aKey.publicKey(), A_ADDR, List.of(Prefix.parse("10.0.0.1/32"))));
        bSendsToA();
        pump();
    }

    static void fromTun(DeviceCore d, byte[] packet) {
        DeviceCore.Scratch s = new DeviceCore.Scratch();
        System.arraycopy(packet, 0, s.buf, DeviceCore.PLAINTEXT_OFFSET, packet.length);
        d.encryptFromTun(s, packet.length);
    }

    static void deliver(DeviceCore d, byte[] data, InetSocketAddress from) throws InterruptedException {
        DeviceCore.Scratch s = new DeviceCore.Scratch();
        System.arraycopy(data, 0, s.buf, 0, data.length);
        d.receiveUdp(s, data.length, from);
        while (d.processHandshake(0)) {
            // drain the handshake queue synchronously
        }
    }

    /** Lets {@code d} of time pass, then fires {@code core}'s due timers. */
    void tickAfter(Duration d, DeviceCore core) {
        clock.advance(d);
        core.tick();
    }

    /** {@code io} has sent exactly one datagram, of {@code length} bytes. */
    static void assertOnlyDatagramIs(QueueIo io, int length) {
        assertThat(io.udp).singleElement().satisfies(d -> assertThat(d.data).hasSize(length));
    }

    /**
     * {@code initiator} has sent one handshake initiation and nothing else; once it is answered,
     * {@code responder} has received {@code packets} packets in all.
     */
    void handshakeDelivers(QueueIo initiator, QueueIo responder, int packets) throws InterruptedException {
        assertOnlyDatagramIs(initiator, Messages.INITIATION_LEN);
        pump();
        assertThat(responder.tun).hasSize(packets);
    }

    /** Moves datagrams between the two cores until both are quiet; returns how many moved. */
    int pump() throws InterruptedException {
        int moved = 0;
        while (!aIo.udp.isEmpty() || !bIo.udp.isEmpty()) {
            Datagram d;
            while ((d = aIo.udp.poll()) != null) {
                deliver(b, d.data, aSource);
                moved++;
            }
            while ((d = bIo.udp.poll()) != null) {
                deliver(a, d.data, B_ADDR);
                moved++;
            }
        }
        return moved;
    }

    @Test
    void handshakeThenDataBothWays() throws Exception {
        byte[] ping = ipv4("10.0.0.1", "10.0.0.2", 100);
        fromTun(a, ping);
        assertOnlyDatagramIs(aIo, Messages.INITIATION_LEN);
        pump();
        assertThat(bIo.tun).singleElement().satisfies(p -> assertThat(p).isEqualTo(ping));
        assertThat(a.stats().handshakesCompleted()).isEqualTo(1);
        assertThat(b.stats().handshakesCompleted()).isEqualTo(1);
        byte[] pong = ipv4("10.0.0.2", "10.0.0.1", 1000);
        fromTun(b, pong);
        pump();
        assertThat(aIo.tun).singleElement().satisfies(p -> assertThat(p).isEqualTo(pong));
        assertThat(b.peers().getFirst().endpoint()).isEqualTo(A_ADDR);
        assertThat(b.peers().getFirst().lastHandshake()).isEqualTo(clock.wall);
        assertThat(a.peers().getFirst().txBytes()).isPositive();
    }

    @Test
    void presharedKeysMustMatch() throws Exception {
        setUp(Timers.DEFAULTS, Key.generatePrivate());
        aSendsToB();
        pump();
        assertThat(bIo.tun).hasSize(1);

        // Sessions outlive a preshared-key change (as in wireguard-go); expire them to force a handshake.
        a.upsertPeer(new PeerConfig(bKey.publicKey(), Key.generatePrivate(), null, null, false, List.of()));
        clock.advance(Duration.ofSeconds(181));
        long handshakes = b.stats().handshakesCompleted();
        aSendsToB();
        pump();
        assertThat(a.stats().handshakesCompleted()).isEqualTo(1);
        assertThat(b.stats().handshakesCompleted()).isEqualTo(handshakes + 1);
        assertThat(bIo.tun).hasSize(1);
    }

    @Test
    void replayedTransportPacketsAreDropped() throws Exception {
        aSendsToB();
        pump();
        fromTun(a, ipv4("10.0.0.1", "10.0.0.2", 20));
        Datagram data = aIo.udp.poll();
        deliver(b, data.data, A_ADDR);
        long invalid = b.stats().invalidPackets();
        deliver(b, data.data, A_ADDR);
        deliver(b, data.data, A_ADDR);
        assertThat(bIo.tun).hasSize(2);
        assertThat(b.stats().invalidPackets()).isEqualTo(invalid + 2);
    }

    @Test
    void badMac1CostsNoDiffieHellman() throws Exception {
        aSendsToB();
        byte[] init = aIo.udp.poll().data;
        init[Messages.INIT_MAC1] ^= 1;
        long dh = b.stats().dhOperations();
        for (int i = 0; i < 100; i++) {
            deliver(b, init, A_ADDR);
        }
        assertThat(b.stats().badMac1()).isEqualTo(100);
        assertThat(b.stats().dhOperations()).isEqualTo(dh);
        assertThat(b.stats().handshakesCompleted()).isZero();
    }

    @Test
    void initiationReplayIsRefusedByTheTimestamp() throws Exception {
        aSendsToB();
        byte[] init = aIo.udp.peek().data.clone();
        pump();
        clock.advance(Duration.ofSeconds(1));
        deliver(b, init, A_ADDR);
        assertThat(b.stats().handshakesCompleted()).isEqualTo(1);
        assertThat(bIo.udp).isEmpty();
    }

    @Test
    void underLoadHandshakesWithoutMac2GetACookieAndTheRetryWithMac2Succeeds() throws Exception {
        aSendsToB();
        byte[] init = aIo.udp.poll().data;
        DeviceCore.Scratch s = new DeviceCore.Scratch();
        // Fill the handshake queue past the load threshold with copies, then process one.
        for (int i = 0; i < DeviceCore.UNDER_LOAD + 1; i++) {
            System.arraycopy(init, 0, s.buf, 0, init.length);
            b.receiveUdp(s, init.length, A_ADDR);
        }
        b.processHandshake(0);
        assertThat(b.stats().cookieRepliesSent()).isEqualTo(1);
        while (b.processHandshake(0)) {
            // drain
        }
        Datagram cookie = bIo.udp.stream().filter(d -> d.data.length == Messages.COOKIE_REPLY_LEN).findFirst()
                .orElseThrow();
        bIo.udp.clear();
        deliver(a, cookie.data, B_ADDR);
        // The next initiation carries mac2 and is accepted even while b is loaded.
        tickAfter(Duration.ofSeconds(6), a);
        byte[] retry = aIo.udp.poll().data;
        assertThat(Arrays.copyOfRange(retry, Messages.INIT_MAC2, Messages.INITIATION_LEN)).isNotEqualTo(new byte[16]);
        for (int i = 0; i < DeviceCore.UNDER_LOAD; i++) {
            System.arraycopy(init, 0, s.buf, 0, init.length);
            b.receiveUdp(s, init.length, A_ADDR);
        }
        System.arraycopy(retry, 0, s.buf, 0, retry.length);
        b.receiveUdp(s, retry.length, A_ADDR);
        long handshakes = b.stats().handshakesCompleted();
        while (b.processHandshake(0)) {
            // drain
        }
        assertThat(b.stats().handshakesCompleted()).isEqualTo(handshakes + 1);
    }

    @Test
    void initiatorRekeysAfterRekeyTimeAndTrafficContinues() throws Exception {
        setUp(Timers.forTestsWithRekeyAfter(Duration.ofSeconds(10)), null);
        aSendsToB();
        pump();
        clock.advance(Duration.ofSeconds(11));
        aSendsToB();
        pump();
        assertThat(a.stats().handshakesCompleted()).isEqualTo(2);
        aSendsToB();
        bSendsToA();
        pump();
        assertThat(bIo.tun).hasSize(3);
        assertThat(aIo.tun).hasSize(1);
        // Old sessions expire: after the reject time without traffic nothing is sent with them.
        clock.advance(Duration.ofSeconds(16));
        bSendsToA();
        handshakeDelivers(bIo, aIo, 2);
    }

    /** A's application sends once, B's once; returns what each side's TUN received in all. */
    void trafficBothWays() throws Exception {
        aSendsToB();
        bSendsToA();
        pump();
    }

    @Test
    void keyRotationKeepsTheSessionsAndEachStepIsUsableByTheOtherSide() throws Exception {
        sessionStartedByBThatRekeysAfter10s();
        Key next = Key.generatePrivate();
        // 1: A answers to the new key too (published from here on); nothing changes on the wire.
        a.setSecondaryKey(next);
        trafficBothWays();
        assertThat(a.stats().handshakesCompleted()).isEqualTo(1);
        // 2: B learns A's new key: the peer keeps its session, no handshake is needed for traffic.
        assertThat(b.changePeerKey(aKey.publicKey(), next.publicKey())).isTrue();
        trafficBothWays();
        assertThat(b.stats().handshakesCompleted()).isEqualTo(1);
        assertThat(bIo.tun).hasSize(2);
        assertThat(aIo.tun).hasSize(3);
        assertThat(b.peers()).singleElement().satisfies(p -> assertThat(p.publicKey()).isEqualTo(next.publicKey()));
        // B's rekey goes to the new key, which A answers as its secondary key.
        clock.advance(Duration.ofSeconds(11));
        bSendsToA();
        pump();
        assertThat(a.stats().badMac1()).isZero();
        assertThat(a.handshakeKeys()).containsEntry(bKey.publicKey(), next.publicKey());
        assertThat(b.handshakeKeys()).containsEntry(next.publicKey(), bKey.publicKey());
        // 3: A switches: it initiates with the new key at once, and B (which has it) answers.
        a.swapKeys();
        assertThat(a.publicKey()).isEqualTo(next.publicKey());
        assertThat(a.secondaryPublicKey()).isEqualTo(aKey.publicKey());
        assertOnlyDatagramIs(aIo, Messages.INITIATION_LEN);
        pump();
        assertThat(a.stats().handshakesCompleted()).isEqualTo(3);
        trafficBothWays();
        assertThat(bIo.tun).hasSize(3);
        assertThat(aIo.tun).hasSize(5);
        // 4: the old key is dropped: an initiation to it is refused before any Diffie-Hellman.
        a.setSecondaryKey(null);
        assertThat(a.secondaryPublicKey()).isNull();
        QueueIo staleIo = new QueueIo();
        DeviceCore staleCore = new DeviceCore(clock, staleIo, Timers.DEFAULTS);
        staleCore.setPrivateKey(Key.generatePrivate());
        staleCore.upsertPeer(new PeerConfig(aKey.publicKey(), null, A_ADDR, null, true, List.of(Prefix.parse(
                "10.0.0.1/32"))));
        fromTun(staleCore, ipv4("10.0.0.3", "10.0.0.1", 10));
        long badMac1 = a.stats().badMac1();
        deliver(a, staleIo.udp.poll().data, B_ADDR);
        assertThat(a.stats().badMac1()).isEqualTo(badMac1 + 1);
    }

    @Test
    void theSwitchHandshakesAtOnceEvenRightAfterAnInitiationAndRetransmitsUntilThePeerHasTheKey() throws Exception {
        aSendsToB();
        pump();
        Key next = Key.generatePrivate();
        a.setSecondaryKey(next);
        a.swapKeys();
        // A's last initiation is not REKEY_TIMEOUT old, and still one goes out, with the new key.
        assertOnlyDatagramIs(aIo, Messages.INITIATION_LEN);
        aIo.udp.clear();
        // B does not have the key yet (the initiation above was lost): A tries again.
        tickAfter(Duration.ofSeconds(6), a);
        assertOnlyDatagramIs(aIo, Messages.INITIATION_LEN);
        b.changePeerKey(aKey.publicKey(), next.publicKey());
        pump();
        assertThat(a.handshakeKeys()).containsEntry(bKey.publicKey(), next.publicKey());
    }

    @Test
    void aPeerThatUsesTheNewKeyBeforeTheDeviceAnswersToItIsRefused() throws Exception {
        sessionStartedByBThatRekeysAfter10s();
        Key next = Key.generatePrivate();
        b.changePeerKey(aKey.publicKey(), next.publicKey());
        clock.advance(Duration.ofSeconds(11));
        bSendsToA();
        pump();
        assertThat(a.stats().badMac1()).isEqualTo(1);
        assertThat(a.stats().handshakesCompleted()).isEqualTo(1);
    }

    @Test
    void rotationRefusesKeysInUse() {
        assertThatThrownBy(() -> a.setSecondaryKey(aKey)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> a.swapKeys()).isInstanceOf(IllegalStateException.class);
        Key other = Key.generatePrivate();
        a.upsertPeer(PeerConfig.of(other.publicKey(), B_ADDR, List.of(Prefix.parse("10.0.0.9/32"))));
        assertThatThrownBy(() -> a.changePeerKey(bKey.publicKey(), other.publicKey())).isInstanceOf(
                IllegalArgumentException.class);
        assertThat(a.changePeerKey(Key.generatePrivate().publicKey(), other.publicKey())).isFalse();
    }

    @Test
    void retransmitsTheInitiationWithJitterUntilAnswered() throws Exception {
        aSendsToB();
        aIo.udp.clear();
        tickAfter(Duration.ofSeconds(5), a);
        assertThat(aIo.udp).isEmpty();
        tickAfter(Duration.ofMillis(334), a);
        handshakeDelivers(aIo, bIo, 1);
    }

    @Test
    void keepaliveFollowsReceivedDataWhenNothingIsSent() throws Exception {
        aSendsToB();
        pump();
        tickAfter(Duration.ofSeconds(10), b);
        assertOnlyDatagramIs(bIo, Messages.TRANSPORT_MIN_LEN);
    }

    @Test
    void roamingPeerKeepsWorkingFromItsNewAddress() throws Exception {
        aSendsToB();
        pump();
        aSource = new InetSocketAddress(InetAddress.getLoopbackAddress(), 2002);
        aSendsToB();
        pump();
        assertThat(b.peers().getFirst().endpoint()).isEqualTo(aSource);
        bSendsToA();
        assertThat(bIo.udp).singleElement().satisfies(d -> assertThat(d.to).isEqualTo(aSource));
    }

    @Test
    void packetsFromAddressesOutsideThePeersAllowedIpsAreDropped() throws Exception {
        fromTun(a, ipv4("10.0.0.9", "10.0.0.2", 10));
        pump();
        assertThat(bIo.tun).isEmpty();
        assertThat(b.stats().invalidPackets()).isEqualTo(1);
    }

    @Test
    void unknownInitiatorsReachTheHookWhichMayInstallThem() throws Exception {
        b.removePeer(aKey.publicKey());
        List<Key> asked = new ArrayList<>();
        b.setUnknownPeerHandler((key, source) -> {
            asked.add(key);
            return Optional.of(PeerConfig.of(key, null, List.of(Prefix.parse("10.0.0.1/32"))));
        });
        aSendsToB();
        pump();
        assertThat(asked).containsExactly(aKey.publicKey());
        assertThat(bIo.tun).hasSize(1);
    }

    @Test
    void aPacketToNoPeerAsksTheHookWhichMayInstallThePeerAndTheFirstPacketGoesThrough() throws Exception {
        a.removePeer(bKey.publicKey());
        List<InetAddress> asked = new ArrayList<>();
        a.setUnknownPeerHandler(new UnknownPeerHandler() {
            @Override
            public Optional<PeerConfig> onInitiation(Key key, InetSocketAddress source) {
                return Optional.empty();
            }

            @Override
            public Optional<PeerConfig> onPacketTo(InetAddress destination) {
                asked.add(destination);
                return destination.getHostAddress().equals("10.0.0.2")
                        ? Optional.of(PeerConfig.of(bKey.publicKey(), B_ADDR, List.of(Prefix.parse("10.0.0.2/32"))))
                        : Optional.empty();
            }
        });
        fromTun(a, ipv4("10.0.0.1", "10.0.0.9", 10));
        assertThat(a.stats().peers()).isZero();
        assertThat(a.stats().invalidPackets()).isEqualTo(1);
        fromTun(a, ipv4("10.0.0.1", "10.0.0.2", 10));
        assertThat(a.stats().peers()).isEqualTo(1);
        pump();
        assertThat(asked).extracting(InetAddress::getHostAddress).containsExactly("10.0.0.9", "10.0.0.2");
        assertThat(bIo.tun).as("the packet that installed the peer, delivered after the handshake").hasSize(1);
    }

    @Test
    void randomAndMutatedPacketsCreateNoState() throws Exception {
        aSendsToB();
        byte[] init = aIo.udp.peek().data.clone();
        pump();
        aSendsToB();
        byte[] data = aIo.udp.poll().data;
        bIo.tun.clear();
        Random r = new Random(7);
        int indices = b.indexTableSize();
        for (int i = 0; i < 20_000; i++) {
            byte[] base = switch (i % 3) {
                case 0 -> init;
                case 1 -> data;
                default -> new byte[r.nextInt(200)];
            };
            byte[] p = base.clone();
            if (i % 3 == 2) {
                r.nextBytes(p);
                if (p.length > 0) {
                    p[0] = (byte) r.nextInt(6);
                }
            } else {
                p[r.nextInt(p.length)] ^= (byte) (1 + r.nextInt(255));
            }
            deliver(b, p, new InetSocketAddress(InetAddress.getLoopbackAddress(), 3000 + i % 1000));
        }
        assertThat(bIo.tun).isEmpty();
        assertThat(b.stats().peers()).isEqualTo(1);
        assertThat(b.indexTableSize()).isEqualTo(indices);
        assertThat(b.stats().handshakesCompleted()).isEqualTo(1);
    }
}
