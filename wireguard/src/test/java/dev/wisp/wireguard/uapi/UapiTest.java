package dev.wisp.wireguard.uapi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.WireGuard;
import dev.wisp.wireguard.WireGuardDevice;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The UAPI text protocol against a real (TUN-less) device and a real unix socket. */
class UapiTest {
    @TempDir
    Path dir;
    WireGuardDevice device;
    final Key priv = Key.generatePrivate();
    final Key peer = Key.generatePrivate().publicKey();
    final Key psk = Key.generatePrivate();

    @BeforeEach
    void setUp() throws Exception {
        device = WireGuard.builder("uapitest").withoutTun().start();
    }

    @AfterEach
    void tearDown() {
        device.close();
    }

    @Test
    void setThenGetSpeaksWgsFormat() throws Exception {
        // The peer first, without a private key: a persistent keepalive turned on sends at once (as
        // wg set does), which with a key would start a handshake and make tx_bytes depend on whether
        // the timer thread ticked before the get.
        Uapi.set(device, List.of("listen_port=0", "replace_peers=true",
                "public_key=" + peer.toHex(), "preshared_key=" + psk.toHex(), "endpoint=[fd00::7]:51820",
                "persistent_keepalive_interval=25", "replace_allowed_ips=true", "allowed_ip=10.1.0.0/16",
                "allowed_ip=fd00:1::/64", "protocol_version=1"));
        assertThat(Uapi.get(device)).startsWith("listen_port=" + device.listenPort() + "\n")
                .contains("public_key=" + peer.toHex() + "\npreshared_key=" + psk.toHex()
                        + "\nprotocol_version=1\nendpoint=[fd00::7]:51820\nlast_handshake_time_sec=0\n"
                        + "last_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=25\n"
                        + "allowed_ip=10.1.0.0/16\nallowed_ip=fd00:1::/64\n");
        Uapi.set(device, List.of("private_key=" + priv.toHex()));
        assertThat(Uapi.get(device))
                .startsWith("private_key=" + priv.toHex() + "\nlisten_port=" + device.listenPort() + "\n")
                .contains("public_key=" + peer.toHex() + "\npreshared_key=" + psk.toHex() + "\n");
        Uapi.set(device, List.of("public_key=" + peer.toHex(), "remove=true"));
        assertThat(device.peers()).isEmpty();
        Uapi.set(device, List.of("public_key=" + peer.toHex(), "update_only=true", "allowed_ip=10.2.0.0/16"));
        assertThat(device.peers()).isEmpty();
    }

    @Test
    void ipv6AddressesArePrintedInTheirShortestForm() {
        assertThat(dev.wisp.wireguard.Prefix.parse("fd00:0:0:0:0:0:0:7/128").toString()).isEqualTo("fd00::7/128");
        assertThat(dev.wisp.wireguard.Prefix.parse("::/0").toString()).isEqualTo("::/0");
        assertThat(dev.wisp.wireguard.Prefix.parse("2001:db8:0:1:0:0:0:1").toString())
                .isEqualTo("2001:db8:0:1::1/128");
        assertThat(dev.wisp.wireguard.Prefix.parse("2001:0:0:1:0:0:0:0/64").toString()).isEqualTo("2001:0:0:1::/64");
        assertThat(dev.wisp.wireguard.Prefix.parse("1:2:3:4:5:6:7:8").toString()).isEqualTo("1:2:3:4:5:6:7:8/128");
        assertThat(dev.wisp.wireguard.Prefix.parse("10.0.0.1/8").toString()).isEqualTo("10.0.0.1/8");
    }

    @Test
    void malformedRequestsAreRefusedWithErrnoAndChangeNothing() {
        assertThatThrownBy(() -> Uapi.set(device, List.of("private_key=zz")))
                .isInstanceOfSatisfying(Uapi.UapiException.class, e -> assertThat(e.errno()).isEqualTo(22));
        assertThatThrownBy(() -> Uapi.set(device, List.of("bogus=1")))
                .isInstanceOfSatisfying(Uapi.UapiException.class, e -> assertThat(e.errno()).isEqualTo(22));
        assertThatThrownBy(() -> Uapi.set(device, List.of("public_key=" + peer.toHex(), "endpoint=nohost")))
                .isInstanceOfSatisfying(Uapi.UapiException.class, e -> assertThat(e.errno()).isEqualTo(22));
        assertThatThrownBy(() -> Uapi.set(device, List.of("public_key=" + peer.toHex(), "allowed_ip=10.0.0.0/33")))
                .isInstanceOfSatisfying(Uapi.UapiException.class, e -> assertThat(e.errno()).isEqualTo(22));
        assertThatThrownBy(() -> Uapi.set(device, List.of("no equals sign")))
                .isInstanceOfSatisfying(Uapi.UapiException.class, e -> assertThat(e.errno()).isEqualTo(71));
        assertThat(device.peers()).isEmpty();
        assertThat(device.privateKey()).isNull();
    }

    @Test
    void serverAnswersOverItsUnixSocketWhichOnlyRootMayOpen() throws Exception {
        try (UapiServer server = UapiServer.start(device, dir)) {
            assertThat(Files.getPosixFilePermissions(server.path()))
                    .isEqualTo(PosixFilePermissions.fromString("rw-------"));
            assertThat(exchange(server.path(), "set=1\nprivate_key=" + priv.toHex() + "\n\nget=1\n\n"))
                    .startsWith("errno=0\n\nprivate_key=" + priv.toHex() + "\n").endsWith("errno=0\n\n");
            assertThat(exchange(server.path(), "set=1\nlisten_port=notanumber\n\n")).isEqualTo("errno=22\n\n");
            assertThat(exchange(server.path(), "get=1\n" + "x".repeat(UapiServer.MAX_LINE + 10) + "\n\n")).isEmpty();
            assertThat(exchange(server.path(), "get=1\n\n")).endsWith("errno=0\n\n");
        }
        assertThat(dir.resolve("uapitest.sock")).doesNotExist();
    }

    /** A server's close removes only its own socket: one a newer server bound at the path since stays. */
    @Test
    void closeLeavesASocketANewerServerBoundAtThePath() throws Exception {
        UapiServer old = UapiServer.start(device, dir);
        Files.delete(old.path()); // replaced, as an agent started beside it would
        try (UapiServer newer = UapiServer.start(device, dir)) {
            old.close();
            assertThat(newer.path()).exists();
            assertThat(exchange(newer.path(), "get=1\n\n")).endsWith("errno=0\n\n");
        }
        assertThat(dir.resolve("uapitest.sock")).doesNotExist();
    }

    /**
     * bind(2) makes the socket file with the umask's mode (wider than 0600): the moment between
     * bind and chmod must be one where the socket cannot be reached. It is bound inside a 0700
     * directory that only its owner may traverse, and appears at its path already 0600.
     */
    @Test
    void theSocketIsUnreachableUntilItIsMode0600() throws Exception {
        Path path = dir.resolve("race.sock");
        List<String> seen = new ArrayList<>();
        try (var server = UapiServer.bindPrivately(path, staged -> {
            try {
                seen.add("final path exists: " + Files.exists(path, LinkOption.NOFOLLOW_LINKS));
                seen.add("directory: "
                        + PosixFilePermissions.toString(Files.getPosixFilePermissions(staged.getParent())));
                seen.add("in " + (staged.getParent().getParent().equals(dir) ? "dir" : staged.getParent()));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        })) {
            assertThat(seen).containsExactly("final path exists: false", "directory: rwx------", "in dir");
            assertThat(Files.getPosixFilePermissions(path)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
            try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
                assertThat(server.accept()).isNotNull();
            }
        }
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString())).as("no staging directory left")
                    .containsExactly("race.sock");
        }
    }

    static String exchange(Path sock, String request) throws Exception {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(sock));
            ch.write(ByteBuffer.wrap(request.getBytes(StandardCharsets.UTF_8)));
            ch.shutdownOutput();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteBuffer buf = ByteBuffer.allocate(4096);
            while (ch.read(buf) > 0) {
                out.write(buf.array(), 0, buf.position());
                buf.clear();
            }
            return out.toString(StandardCharsets.UTF_8);
        }
    }
}
