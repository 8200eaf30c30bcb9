package dev.wisp.node.wireguard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.node.wireguard.JustInTimePeersTest.RecordingDevice;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.Prefix;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The key rotation's phases against a recording device: publish, switch, overlap, done; and the period. */
class KeyRotationTest {
    @TempDir
    Path dir;
    final RecordingDevice device = new RecordingDevice();
    Instant now = Instant.parse("2026-12-06T05:00:00Z");
    final InstantSource clock = () -> now;
    final Key peer = Key.generatePrivate().publicKey();
    Key original;
    KeyRotation rotation;
    int published;

    @BeforeEach
    void device() throws Exception {
        original = NodeKey.loadOrCreate(dir);
        device.setPrivateKey(original);
        device.upsertPeer(PeerConfig.of(peer, new InetSocketAddress("10.8.0.2", 51820), List.of(Prefix.parse(
                "10.9.0.16/28"))));
        rotation = new KeyRotation(device, dir, original, now, clock);
    }

    @Test
    void aRotationPublishesFirstSwitchesWhenTheControlPlaneSendsTheKeyAndDropsTheOldKeyOnceThePeerHasTheNew()
            throws Exception {
        assertThatThrownBy(() -> rotation.rotate("test")).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("needs the control plane");
        rotation.publishWith(() -> published++);
        KeyRotation.Status s = rotation.rotate("test");
        Key fresh = NodeKey.loadOrCreate(dir);
        // Published (stored 0600, answered by the device, sent at once) before it is used.
        assertThat(s.phase()).isEqualTo(KeyRotation.Phase.PUBLISHING);
        assertThat(fresh).isNotEqualTo(original);
        assertThat(Files.getPosixFilePermissions(dir.resolve(NodeKey.FILE))).isEqualTo(PosixFilePermissions
                .fromString("rw-------"));
        assertThat(rotation.published()).isEqualTo(fresh.publicKey());
        assertThat(device.publicKey()).as("still initiating with the old key").isEqualTo(original.publicKey());
        assertThat(device.secondaryPublicKey()).isEqualTo(fresh.publicKey());
        assertThat(published).isEqualTo(1);
        assertThat(rotation.rotate("again").phase()).as("one at a time").isEqualTo(KeyRotation.Phase.PUBLISHING);
        assertThat(published).isEqualTo(1);
        // The control plane still sends the old key: nothing changes.
        rotation.ownKeyIs(original.publicKey().toBase64());
        assertThat(device.publicKey()).isEqualTo(original.publicKey());
        // It sends the new one: the device switches and still answers to the old one.
        rotation.ownKeyIs(fresh.publicKey().toBase64());
        assertThat(device.publicKey()).isEqualTo(fresh.publicKey());
        assertThat(device.secondaryPublicKey()).isEqualTo(original.publicKey());
        assertThat(rotation.status().phase()).isEqualTo(KeyRotation.Phase.OVERLAP);
        assertThat(rotation.status().waitingFor()).containsExactly(peer);
        // The peer's last handshake used the old key: the overlap goes on.
        device.handshakeKeys.put(peer, original.publicKey());
        now = now.plusSeconds(1);
        rotation.tick(Duration.ZERO);
        assertThat(device.secondaryPublicKey()).isEqualTo(original.publicKey());
        // It handshook with the new key: the old one is dropped.
        device.handshakeKeys.put(peer, fresh.publicKey());
        now = now.plusSeconds(1);
        rotation.tick(Duration.ZERO);
        assertThat(device.secondaryPublicKey()).isNull();
        assertThat(rotation.status().phase()).isEqualTo(KeyRotation.Phase.IDLE);
        assertThat(rotation.status().rotations()).isEqualTo(1);
    }

    @Test
    void theOldKeyGoesAfterTheLongestOverlapEvenIfAPeerNeverHandshakes() throws Exception {
        rotation.publishWith(() -> published++);
        rotation.rotate("test");
        rotation.ownKeyIs(rotation.published().toBase64());
        now = now.plus(KeyRotation.MAX_OVERLAP).minusSeconds(1);
        rotation.tick(Duration.ZERO);
        assertThat(device.secondaryPublicKey()).isEqualTo(original.publicKey());
        now = now.plusSeconds(1);
        rotation.tick(Duration.ZERO);
        assertThat(device.secondaryPublicKey()).isNull();
        assertThat(rotation.status().phase()).isEqualTo(KeyRotation.Phase.IDLE);
    }

    @Test
    void aPeriodStartsARotationOnceTheKeyIsThatOldAndZeroNever() {
        rotation.publishWith(() -> published++);
        now = now.plus(Duration.ofDays(400));
        rotation.tick(Duration.ZERO);
        assertThat(published).isZero();
        rotation.tick(Duration.ofDays(401));
        assertThat(published).isZero();
        rotation.tick(Duration.ofDays(400));
        assertThat(published).isEqualTo(1);
        assertThat(rotation.status().phase()).isEqualTo(KeyRotation.Phase.PUBLISHING);
    }
}
