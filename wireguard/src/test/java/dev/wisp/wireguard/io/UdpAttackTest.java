package dev.wisp.wireguard.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.wireguard.DeviceStats;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.Timers;
import dev.wisp.wireguard.WireGuard;
import dev.wisp.wireguard.WireGuardDevice;
import dev.wisp.wireguard.device.Clock;
import dev.wisp.wireguard.device.DeviceCore;
import dev.wisp.wireguard.device.Io;
import dev.wisp.wireguard.noise.Messages;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A real device (UDP on loopback, no TUN) under attack from a scripted peer in the test: a protocol
 * core of our own that shares a session with the device, whose datagrams the test captures, replays,
 * corrupts and floods.
 */
class UdpAttackTest {
    WireGuardDevice device;
    DatagramChannel attacker;
    DeviceCore peer;
    final List<byte[]> sent = new ArrayList<>();
    final Key deviceKey = Key.generatePrivate();
    final Key peerKey = Key.generatePrivate();
    InetSocketAddress target;

    @BeforeEach
    void setUp() throws IOException {
        device = WireGuard.builder("attack").withoutTun().start();
        device.setPrivateKey(deviceKey);
        device.upsertPeer(PeerConfig.of(peerKey.publicKey(), null, List.of(Prefix.parse("10.0.0.1/32"))));
        target = new InetSocketAddress(InetAddress.getLoopbackAddress(), device.listenPort());
        attacker = DatagramChannel.open();
        attacker.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        peer = new DeviceCore(Clock.SYSTEM, new Io() {
            @Override
            public void sendUdp(InetSocketAddress to, byte[] buf, int off, int len) {
                byte[] copy = Arrays.copyOfRange(buf, off, off + len);
                synchronized (sent) {
                    sent.add(copy);
                }
                send(copy);
            }

            @Override
            public void writeTun(byte[] buf, int off, int len) {}
        }, Timers.DEFAULTS);
        peer.setPrivateKey(peerKey);
        peer.upsertPeer(PeerConfig.of(deviceKey.publicKey(), target, List.of(Prefix.parse("10.0.0.2/32"))));
    }

    @AfterEach
    void tearDown() throws IOException {
        device.close();
        attacker.close();
    }

    void send(byte[] data) {
        try {
            attacker.send(ByteBuffer.wrap(data), target);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Completes a handshake: the scripted peer initiates and consumes the device's response. */
    void handshake() throws Exception {
        byte[] ping = OffloadTest.ipv4(1, 8);
        DeviceCore.Scratch s = new DeviceCore.Scratch();
        System.arraycopy(ping, 0, s.buf, DeviceCore.PLAINTEXT_OFFSET, ping.length);
        peer.encryptFromTun(s, ping.length);
        ByteBuffer bb = ByteBuffer.wrap(s.buf);
        attacker.socket().setSoTimeout(10_000);
        InetSocketAddress from = (InetSocketAddress) attacker.receive(bb);
        peer.receiveUdp(s, bb.position(), from);
        assertThat(peer.processHandshake(5_000)).isTrue();
        assertThat(peer.stats().handshakesCompleted()).isEqualTo(1);
    }

    PeerStatus devicePeer() {
        return device.peers().getFirst();
    }

    byte[] lastSent(int type) {
        synchronized (sent) {
            for (int i = sent.size() - 1; i >= 0; i--) {
                if (sent.get(i)[0] == type) {
                    return sent.get(i);
                }
            }
        }
        throw new AssertionError("nothing of type " + type + " sent");
    }

    @Test
    void replayedTransportPacketsAreDropped() throws Exception {
        handshake();
        byte[] data = lastSent(Messages.TYPE_TRANSPORT);
        await().atMost(Duration.ofSeconds(10)).until(() -> devicePeer().rxBytes() >= data.length);
        long rx = devicePeer().rxBytes();
        long invalid = device.stats().invalidPackets();
        for (int i = 0; i < 50; i++) {
            send(data);
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> device.stats().invalidPackets() == invalid + 50);
        assertThat(devicePeer().rxBytes()).isEqualTo(rx);
    }

    @Test
    void initiationsWithABadMac1CostNoDiffieHellman() throws Exception {
        handshake();
        byte[] init = lastSent(Messages.TYPE_INITIATION).clone();
        init[Messages.INIT_MAC1 + 3] ^= 0x40;
        DeviceStats before = device.stats();
        for (int i = 0; i < 1000; i++) {
            send(init);
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> device.stats().badMac1() == before.badMac1() + 1000);
        assertThat(device.stats().dhOperations()).isEqualTo(before.dhOperations());
        assertThat(device.stats().handshakesCompleted()).isEqualTo(before.handshakesCompleted());
    }

    @Test
    void aMillionRandomAndMutatedPacketsLeaveNoStateAndNoGrowth() throws Exception {
        handshake();
        byte[] init = lastSent(Messages.TYPE_INITIATION);
        byte[] data = lastSent(Messages.TYPE_TRANSPORT);
        // The device has counted the initiation and the first data packet.
        await().atMost(Duration.ofSeconds(10))
                .until(() -> devicePeer().rxBytes() == Messages.INITIATION_LEN + data.length);
        long rxAtStart = devicePeer().rxBytes();
        DeviceStats start = device.stats();
        SplittableRandom r = new SplittableRandom(1);
        int total = 1_000_000;
        int batch = 5_000;
        long heapAtTenth = 0;
        for (int i = 0; i < total; i++) {
            byte[] p = switch (i % 4) {
                case 0 -> init.clone();
                case 1 -> data.clone();
                case 2 -> new byte[r.nextInt(4, 200)];
                default -> new byte[switch (r.nextInt(4)) {
                    case 0 -> Messages.INITIATION_LEN;
                    case 1 -> Messages.RESPONSE_LEN;
                    case 2 -> Messages.COOKIE_REPLY_LEN;
                    default -> Messages.TRANSPORT_MIN_LEN + r.nextInt(100);
                }];
            };
            if (i % 4 < 2) {
                int flips = 1 + r.nextInt(3);
                for (int f = 0; f < flips; f++) {
                    p[r.nextInt(p.length)] ^= (byte) r.nextInt(1, 256);
                }
            } else {
                r.nextBytes(p);
                p[0] = (byte) r.nextInt(6);
                p[1] = 0;
                p[2] = 0;
                p[3] = 0;
            }
            send(p);
            if ((i + 1) % batch == 0) {
                long expected = start.datagramsReceived() + i + 1;
                // Pace the flood so the kernel does not drop it: every datagram must reach the engine. Checked
                // at once and then every few milliseconds: the engine takes a batch in about that, and 200
                // batches at Awaitility's default 100 ms were most of this test's time.
                await().atMost(Duration.ofSeconds(60)).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(2))
                        .until(() -> device.stats().datagramsReceived() >= expected);
                if (i + 1 == total / 10) {
                    heapAtTenth = usedHeapAfterGc();
                }
            }
        }
        // Let the handshake thread drain its queue: counters stop moving.
        java.util.concurrent.atomic.AtomicReference<DeviceStats> last = new java.util.concurrent.atomic.AtomicReference<>();
        await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(500))
                .until(() -> device.stats().equals(last.getAndSet(device.stats())));
        long heapAtEnd = usedHeapAfterGc();
        DeviceStats end = device.stats();
        assertThat(end.datagramsReceived() - start.datagramsReceived()).isEqualTo(total);
        assertThat(end.peers()).isEqualTo(1);
        assertThat(end.indexEntries()).isEqualTo(start.indexEntries());
        assertThat(end.handshakesCompleted()).isEqualTo(start.handshakesCompleted());
        assertThat(end.badMac1() - start.badMac1()).as("bad mac1 drops").isGreaterThan(total / 8);
        assertThat(devicePeer().rxBytes()).as("no forged packet was accepted").isEqualTo(rxAtStart);
        assertThat(heapAtEnd - heapAtTenth).as("heap growth over 900k packets").isLessThan(16L << 20);
    }

    static long usedHeapAfterGc() {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
