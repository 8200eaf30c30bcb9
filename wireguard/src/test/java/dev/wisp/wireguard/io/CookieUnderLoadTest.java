package dev.wisp.wireguard.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.wireguard.DeviceStats;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.Prefix;
import dev.wisp.wireguard.WireGuard;
import dev.wisp.wireguard.WireGuardDevice;
import dev.wisp.wireguard.crypto.Blake2s;
import dev.wisp.wireguard.crypto.X25519;
import dev.wisp.wireguard.crypto.XChaChaPoly;
import dev.wisp.wireguard.noise.CookieGenerator;
import dev.wisp.wireguard.noise.Handshake;
import dev.wisp.wireguard.noise.Identity;
import dev.wisp.wireguard.noise.Messages;
import dev.wisp.wireguard.noise.Tai64n;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.DatagramChannel;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.LongAdder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The cookie and mac2 layer over real UDP (loopback): a device that counts as under load (the
 * test-only threshold 0) answers an initiation without mac2 with a cookie reply and does no
 * Diffie-Hellman work for it; the initiator's retry with mac2 completes the handshake; a burst of
 * initiations from one source is cut down by the per-source rate limit.
 */
class CookieUnderLoadTest {
    WireGuardDevice device;
    DatagramChannel initiator;
    final Key deviceKey = Key.generatePrivate();
    final Key peerKey = Key.generatePrivate();
    InetSocketAddress target;
    Handshake handshake;
    CookieGenerator cookies;

    @BeforeEach
    void setUp() throws IOException {
        device = WireGuard.builder("cookie").withoutTun().underLoadThresholdForTests(0).start();
        device.setPrivateKey(deviceKey);
        device.upsertPeer(PeerConfig.of(peerKey.publicKey(), null, List.of(Prefix.parse("10.0.0.1/32"))));
        target = new InetSocketAddress(InetAddress.getLoopbackAddress(), device.listenPort());
        initiator = DatagramChannel.open();
        initiator.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        initiator.socket().setSoTimeout(10_000);
        byte[] remote = deviceKey.publicKey().bytes();
        handshake = new Handshake(new Identity(peerKey.bytes()), remote, new byte[32], new LongAdder());
        cookies = new CookieGenerator(remote);
    }

    @AfterEach
    void tearDown() throws IOException {
        device.close();
        initiator.close();
    }

    byte[] initiation() {
        byte[] init = handshake.createInitiation(42, Tai64n.of(Instant.now()), X25519.generatePrivateKey());
        cookies.stamp(init, System.nanoTime());
        return init;
    }

    void send(byte[] msg) throws IOException {
        initiator.send(ByteBuffer.wrap(msg), target);
    }

    byte[] receive() throws IOException {
        java.net.DatagramPacket p = new java.net.DatagramPacket(new byte[2048], 2048);
        initiator.socket().receive(p);
        return Arrays.copyOf(p.getData(), p.getLength());
    }

    @Test
    void initiationWithoutMac2GetsACookieAndNoDhThenTheRetryWithMac2Completes() throws Exception {
        DeviceStats before = device.stats();
        byte[] init = initiation();
        assertThat(Arrays.copyOfRange(init, Messages.INIT_MAC2, Messages.INITIATION_LEN)).as("no mac2 yet")
                .isEqualTo(new byte[16]);
        send(init);
        byte[] reply = receive();
        assertThat(reply).hasSize(Messages.COOKIE_REPLY_LEN);
        assertThat(reply[0]).isEqualTo((byte) Messages.TYPE_COOKIE_REPLY);
        assertThat(Messages.getInt(reply, Messages.COOKIE_RECEIVER)).isEqualTo(42);
        DeviceStats afterCookie = device.stats();
        assertThat(afterCookie.cookieRepliesSent() - before.cookieRepliesSent()).isEqualTo(1);
        assertThat(afterCookie.dhOperations()).as("no DH for an initiation without mac2")
                .isEqualTo(before.dhOperations());
        assertThat(afterCookie.handshakesCompleted()).isEqualTo(before.handshakesCompleted());

        assertThat(cookies.consumeReply(reply, System.nanoTime())).as("cookie reply authenticates").isTrue();
        cookies.stamp(init, System.nanoTime());
        assertThat(Arrays.copyOfRange(init, Messages.INIT_MAC2, Messages.INITIATION_LEN)).isNotEqualTo(new byte[16]);
        send(init);
        byte[] response = receive();
        assertThat(response).hasSize(Messages.RESPONSE_LEN);
        assertThat(response[0]).isEqualTo((byte) Messages.TYPE_RESPONSE);
        assertThat(handshake.consumeResponse(response, System.nanoTime())).as("the handshake completes").isPresent();
        DeviceStats done = device.stats();
        assertThat(done.handshakesCompleted() - before.handshakesCompleted()).isEqualTo(1);
        assertThat(done.dhOperations()).isGreaterThan(before.dhOperations());
        assertThat(done.cookieRepliesSent()).isEqualTo(afterCookie.cookieRepliesSent());
    }

    @Test
    void aBurstOfInitiationsWithValidMac2FromOneSourceIsRateLimitedBeforeAnyDh() throws Exception {
        long dhPerHandshake = dhPerHandshake();
        // Learn the cookie for our source address from one reply.
        byte[] first = initiation();
        send(first);
        byte[] reply = receive();
        byte[] cookie = XChaChaPoly.open(Identity.cookieKey(deviceKey.publicKey().bytes()),
                Arrays.copyOfRange(reply, Messages.COOKIE_NONCE, Messages.COOKIE_ENCRYPTED),
                Arrays.copyOfRange(reply, Messages.COOKIE_ENCRYPTED, Messages.COOKIE_REPLY_LEN),
                Arrays.copyOfRange(first, Messages.INIT_MAC1, Messages.INIT_MAC2)).orElseThrow();
        // 60 distinct peers, one initiation each with a valid mac2, all from this one source: the
        // per-peer initiation limit never applies, so only the per-source limit can refuse them.
        int burst = 60;
        byte[] remote = deviceKey.publicKey().bytes();
        byte[][] inits = new byte[burst][];
        for (int i = 0; i < burst; i++) {
            Key k = Key.generatePrivate();
            device.upsertPeer(PeerConfig.of(k.publicKey(), null, List.of(Prefix.parse("10.1.0." + i + "/32"))));
            byte[] init = new Handshake(new Identity(k.bytes()), remote, new byte[32], new LongAdder())
                    .createInitiation(1000 + i, Tai64n.of(Instant.now()), X25519.generatePrivateKey());
            new CookieGenerator(remote).stamp(init, System.nanoTime());
            System.arraycopy(Blake2s.mac(cookie, init, 0, Messages.INIT_MAC2), 0, init, Messages.INIT_MAC2, 16);
            inits[i] = init;
        }
        DeviceStats before = device.stats();
        for (byte[] init : inits) {
            send(init);
        }
        await().atMost(Duration.ofSeconds(20)).until(() -> {
            DeviceStats s = device.stats();
            return s.rateLimited() - before.rateLimited() + s.handshakesCompleted()
                    - before.handshakesCompleted() == burst;
        });
        DeviceStats after = device.stats();
        long limited = after.rateLimited() - before.rateLimited();
        long completed = after.handshakesCompleted() - before.handshakesCompleted();
        // 20 per second with a burst of 5: a 60-message burst arriving in well under a second gets
        // only a handful through.
        assertThat(limited).as("refused by the per-source limit").isGreaterThanOrEqualTo(burst / 2);
        assertThat(completed).isPositive();
        assertThat(after.cookieRepliesSent()).as("all carried a valid mac2").isEqualTo(before.cookieRepliesSent());
        assertThat(after.invalidPackets()).isEqualTo(before.invalidPackets());
        int answered = 0;
        initiator.socket().setSoTimeout(2000);
        try {
            while (answered < burst && receive()[0] == Messages.TYPE_RESPONSE) {
                answered++;
            }
        } catch (SocketTimeoutException e) {
            // no more responses
        }
        assertThat((long) answered).as("responses").isEqualTo(completed);
        // The refused ones cost no DH: the DH count grew by the completed handshakes' share only.
        assertThat(after.dhOperations() - before.dhOperations()).isEqualTo(completed * dhPerHandshake);
    }

    /** DH operations the device does to answer one initiation (the source's bucket is full). */
    long dhPerHandshake() throws Exception {
        DeviceStats before = device.stats();
        Key k = Key.generatePrivate();
        device.upsertPeer(PeerConfig.of(k.publicKey(), null, List.of(Prefix.parse("10.2.0.1/32"))));
        byte[] remote = deviceKey.publicKey().bytes();
        Handshake hs = new Handshake(new Identity(k.bytes()), remote, new byte[32], new LongAdder());
        CookieGenerator cg = new CookieGenerator(remote);
        byte[] init = hs.createInitiation(7, Tai64n.of(Instant.now()), X25519.generatePrivateKey());
        cg.stamp(init, System.nanoTime());
        send(init);
        assertThat(cg.consumeReply(receive(), System.nanoTime())).isTrue();
        cg.stamp(init, System.nanoTime());
        send(init);
        assertThat(receive()[0]).isEqualTo((byte) Messages.TYPE_RESPONSE);
        return device.stats().dhOperations() - before.dhOperations();
    }
}
