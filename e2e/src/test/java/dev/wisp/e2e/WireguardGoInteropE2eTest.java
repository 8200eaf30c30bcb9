package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.wisp.local.Sh;
import dev.wisp.testing.Netns;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Future;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The Java device ({@code wisp wireguard -f}, a child JVM on node A of a {@link WireguardPair})
 * against wireguard-go (node B), both configured only with {@code wg set}. The Java side runs with
 * the test-only rekey time of {@value #REKEY_SECONDS} s, and the long transfer runs until the Java
 * initiator has rekeyed while it flowed, so every run proves a rekey under traffic.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WireguardGoInteropE2eTest {
    static final long GIB = 1L << 30;
    static final int REKEY_SECONDS = 10;
    WireguardPair net;
    String javaIf;
    String goIf;
    String pubA;
    String pubB;

    @BeforeAll
    void setUp() throws Exception {
        net = WireguardPair.up("wgi", 180, Map.of("WISP_WG_TEST_REKEY_AFTER_SECONDS", String.valueOf(REKEY_SECONDS)));
        javaIf = net.javaIf;
        goIf = net.goIf;
        pubA = net.pubA;
        pubB = net.pubB;
        net.configureInterfaces();
    }

    @AfterAll
    void tearDown() throws Exception {
        if (net != null) {
            net.close();
        }
    }

    String v6(int host) {
        return net.v6(host);
    }

    /** Java's peer is wireguard-go, at its underlay address when {@code withEndpoint}. */
    private void peerJava(boolean withEndpoint) {
        peer(net.nsA, javaIf, pubB, withEndpoint ? net.underB + ":51821" : null, net.tunB, v6(2));
    }

    /** wireguard-go's peer is the Java device, at its underlay address when {@code withEndpoint}. */
    private void peerGo(boolean withEndpoint) {
        peer(net.nsB, goIf, pubA, withEndpoint ? net.underA + ":51820" : null, net.tunA, v6(1));
    }

    private void peer(String ns, String iface, String pub, String endpoint, String tun4, String tun6) {
        List<String> args = new ArrayList<>(List.of("set", iface, "peer", pub));
        if (endpoint != null) {
            args.addAll(List.of("endpoint", endpoint));
        }
        args.addAll(List.of("allowed-ips", tun4 + "/32," + tun6 + "/128"));
        net.wg(ns, args.toArray(String[]::new));
    }

    private void removePeers() {
        net.wg(net.nsA, "set", javaIf, "peer", pubB, "remove");
        net.wg(net.nsB, "set", goIf, "peer", pubA, "remove");
    }

    private long javaHandshakeEpoch() {
        String out = net.wg(net.nsA, "show", javaIf, "latest-handshakes").trim();
        return Long.parseLong(out.split("\\s+")[1]);
    }

    @Test
    @Order(1)
    void javaInitiatesPingAndWgShowReportsHandshakeAndBytes() {
        peerGo(false);
        peerJava(true);
        String ping = net.ping(net.nsA, net.tunB, 3);
        assertThat(ping).contains("3 received");
        assertThat(javaHandshakeEpoch()).isGreaterThan(System.currentTimeMillis() / 1000 - 60);
        String[] transfer = net.wg(net.nsA, "show", javaIf, "transfer").trim().split("\\s+");
        assertThat(transfer[0]).isEqualTo(pubB);
        assertThat(Long.parseLong(transfer[1])).as("rx bytes").isGreaterThan(3 * 84);
        assertThat(Long.parseLong(transfer[2])).as("tx bytes").isGreaterThan(3 * 84);
        String show = net.wg(net.nsA, "show", javaIf);
        assertThat(show).contains("latest handshake:").contains("transfer:").contains("endpoint: " + net.underB
                + ":51821");
        // The go side learnt the Java side's endpoint from the initiation only.
        assertThat(net.wg(net.nsB, "show", goIf, "endpoints")).contains(net.underA + ":51820");
        // IPv6 inside the tunnel, routed by the IPv6 allowed IP.
        assertThat(WireguardPair.in(net.nsA, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "3", v6(2)))
                .contains("2 received");
        removePeers();
    }

    @Test
    @Order(2)
    void showconfOutputFeedsSetconfUnchanged() throws Exception {
        peerJava(true);
        String conf = net.wg(net.nsA, "showconf", javaIf);
        assertThat(conf).contains("[Interface]").contains("ListenPort = 51820").contains("PublicKey = " + pubB)
                .contains("AllowedIPs = " + net.tunB + "/32, " + v6(2) + "/128")
                .contains("Endpoint = " + net.underB + ":51821");
        Path file = Files.createTempFile("wisp-wg", ".conf");
        try {
            Files.writeString(file, conf);
            net.wg(net.nsA, "set", javaIf, "peer", pubB, "remove");
            assertThat(net.wg(net.nsA, "show", javaIf, "peers").trim()).isEmpty();
            net.wg(net.nsA, "setconf", javaIf, file.toString());
            assertThat(net.wg(net.nsA, "showconf", javaIf)).isEqualTo(conf);
        } finally {
            Files.deleteIfExists(file);
        }
        net.wg(net.nsA, "set", javaIf, "peer", pubB, "remove");
    }

    @Test
    @Order(3)
    void wireguardGoInitiatesTowardsJavaThatKnowsNoEndpoint() {
        peerJava(false);
        peerGo(true);
        assertThat(net.ping(net.nsB, net.tunA, 3)).contains("3 received");
        assertThat(net.wg(net.nsA, "show", javaIf, "endpoints")).contains(net.underB + ":51821");
        assertThat(javaHandshakeEpoch()).isPositive();
        // Data from the Java side now flows on the session wireguard-go started.
        assertThat(net.ping(net.nsA, net.tunB, 2)).contains("2 received");
        removePeers();
    }

    @Test
    @Order(4)
    void oneGibTcpTransferAcrossRekeysArrivesIntact() throws Exception {
        peerJava(true);
        peerGo(true);
        assertThat(net.ping(net.nsA, net.tunB, 1)).contains("1 received");
        long handshakeBefore = javaHandshakeEpoch();
        // At least 1 GiB, and the sender goes on until the Java initiator has rekeyed (REKEY_AFTER_TIME
        // is 10 s: at most ~3 rekey periods more), so every run crosses a rekey under traffic.
        String[] hashes = transfer(net.nsB, net.nsA, net.tunB, GIB, () -> javaHandshakeEpoch() > handshakeBefore,
                Duration.ofMinutes(4));
        assertThat(hashes[1]).as("SHA-256 received").isEqualTo(hashes[0]);
        assertThat(javaHandshakeEpoch()).as("latest handshake advanced during the transfer")
                .isGreaterThan(handshakeBefore);
        assertThat(net.javaAlive()).isTrue();
    }

    @Test
    @Order(5)
    void rekeyHappensWhileTrafficFlows() {
        long before = javaHandshakeEpoch();
        await("a rekey by the Java initiator").atMost(Duration.ofSeconds(4L * REKEY_SECONDS))
                .pollInterval(Duration.ofMillis(500)).until(() -> {
                    net.ping(net.nsA, net.tunB, 1);
                    return javaHandshakeEpoch() > before;
                });
        assertThat(net.ping(net.nsA, net.tunB, 3)).contains("3 received");
    }

    @Test
    @Order(6)
    void roamingPeerKeepsWorkingFromItsNewAddress() throws Exception {
        String moved = "10." + net.base + ".0.14";
        // Keep the new address when the old primary one goes.
        WireguardPair.in(net.nsB, "sysctl", "-qw", "net.ipv4.conf.all.promote_secondaries=1");
        WireguardPair.in(net.nsB, "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1");
        net.ip(net.nsB, "addr", "add", moved + "/24", "dev", "eth0");
        net.ip(net.nsB, "addr", "del", net.underB + "/24", "dev", "eth0");
        // wireguard-go keeps sending from the address it last used ("sticky" source) and fails with
        // ENETUNREACH once that address is gone, until its own timers start a new handshake (that,
        // not the Java side, made this test take ~18 s before). A new listen port rebinds its
        // socket and forgets the source, as a NAT rebinding would: the peer now really sends from
        // moved:51822.
        net.wg(net.nsB, "set", goIf, "listen-port", "51822");
        // One ping from the moved peer: its first authenticated packet must move the Java side's
        // endpoint at once (not a later handshake), and the reply must reach the new address.
        long start = System.nanoTime();
        java.util.concurrent.CompletableFuture<String> ping = java.util.concurrent.CompletableFuture
                .supplyAsync(() -> WireguardPair.in(net.nsB, "ping", "-c", "1", "-W", "2", net.tunA));
        await("the Java side follows the roaming peer").atMost(Duration.ofSeconds(2))
                .pollInterval(Duration.ofMillis(20))
                .untilAsserted(
                        () -> assertThat(net.wg(net.nsA, "show", javaIf, "endpoints")).contains(moved + ":51822"));
        long millis = (System.nanoTime() - start) / 1_000_000;
        System.out.println("roaming: endpoint updated " + millis + " ms after the first packet from " + moved);
        assertThat(ping.get(10, java.util.concurrent.TimeUnit.SECONDS)).contains("1 received");
        assertThat(net.ping(net.nsA, net.tunB, 3)).contains("3 received");
        // Back to port 51821 (the loss test filters on it); the Java side follows again.
        net.ip(net.nsB, "addr", "add", net.underB + "/24", "dev", "eth0");
        net.wg(net.nsB, "set", goIf, "listen-port", "51821");
        assertThat(net.ping(net.nsB, net.tunA, 1)).contains("1 received");
        assertThat(net.wg(net.nsA, "show", javaIf, "endpoints")).contains(":51821");
    }

    @Test
    @Order(7)
    void tenPercentUnderlayLossStillCompletes() throws Exception {
        // Drop 10 % of the WireGuard datagrams in both directions on B's side of the underlay; the
        // data flows from wireguard-go to the Java side (the 1 GiB test covers the other way).
        String nft = """
                table inet wgloss {
                    chain in {
                        type filter hook input priority 0;
                        udp dport 51821 numgen random mod 10 0 counter drop
                    }
                    chain out {
                        type filter hook output priority 0;
                        udp sport 51821 numgen random mod 10 0 counter drop
                    }
                }
                """;
        Path rules = Files.createTempFile("wisp-nft", ".nft");
        try {
            Files.writeString(rules, nft);
            WireguardPair.in(net.nsB, "nft", "-f", rules.toString());
            String[] hashes = transfer(net.nsA, net.nsB, net.tunA, 64L << 20, () -> true, Duration.ofMinutes(3));
            assertThat(hashes[1]).isEqualTo(hashes[0]);
            String counters = WireguardPair.in(net.nsB, "nft", "list", "table", "inet", "wgloss");
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("counter packets (\\d+)").matcher(counters);
            long dropped = 0;
            while (m.find()) {
                dropped += Long.parseLong(m.group(1));
            }
            assertThat(dropped).as("datagrams dropped by the loss rule").isGreaterThan(100);
        } finally {
            Sh.tryRun(List.of("ip", "netns", "exec", net.nsB, "nft", "delete", "table", "inet", "wgloss"));
            Files.deleteIfExists(rules);
        }
    }

    @Test
    @Order(8)
    void sigtermRemovesTheInterfaceAndTheSocket() throws Exception {
        Path sock = Path.of("/var/run/wireguard", javaIf + ".sock");
        assertThat(sock).exists();
        String pid = Sh.run("sh", "-c", "pgrep -f 'wireguard -f " + javaIf + "$'").trim().split("\\s+")[0];
        Sh.run("kill", "-TERM", pid);
        await("socket removed").atMost(Duration.ofSeconds(20)).until(() -> !Files.exists(sock));
        await("interface removed").atMost(Duration.ofSeconds(20))
                .until(() -> !Sh.run("ip", "-n", net.nsA, "-o", "link").contains(javaIf));
        await("exit logged").atMost(Duration.ofSeconds(20))
                .untilAsserted(
                        () -> assertThat(Files.readString(net.javaLog)).contains("interface " + javaIf + " removed"));
    }

    /**
     * Streams at least {@code bytes} of seeded pseudo-random data from a socket in {@code clientNs} to
     * a server in {@code serverNs}, and more (64 KiB at a time) until {@code until} holds; returns the
     * sender's and receiver's SHA-256 and the milliseconds it took. Both are bounded by {@code timeout}.
     */
    static String[] transfer(String serverNs, String clientNs, String serverIp, long bytes, BooleanSupplier until,
            Duration timeout) throws Exception {
        ServerSocket server = Netns.call(serverNs, () -> {
            ServerSocket s = new ServerSocket();
            s.bind(new InetSocketAddress(serverIp, 5201));
            return s;
        }, Duration.ofSeconds(10));
        try (server) {
            Future<String> received = Netns.start(serverNs, () -> {
                try (Socket s = server.accept(); InputStream in = s.getInputStream()) {
                    MessageDigest md = MessageDigest.getInstance("SHA-256");
                    byte[] buf = new byte[1 << 16];
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        md.update(buf, 0, n);
                    }
                    return HexFormat.of().formatHex(md.digest());
                }
            });
            long start = System.nanoTime();
            long deadline = start + timeout.toNanos();
            Future<String> sent = Netns.start(clientNs, () -> {
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress(serverIp, 5201), 10_000);
                    OutputStream out = s.getOutputStream();
                    MessageDigest md = MessageDigest.getInstance("SHA-256");
                    SplittableRandom r = new SplittableRandom(42);
                    byte[] buf = new byte[1 << 16];
                    long left = bytes;
                    while (left > 0 || !until.getAsBoolean() && System.nanoTime() < deadline) {
                        for (int i = 0; i < buf.length; i += 8) {
                            long v = r.nextLong();
                            for (int j = 0; j < 8; j++) {
                                buf[i + j] = (byte) (v >>> (8 * j));
                            }
                        }
                        int n = left > 0 ? (int) Math.min(buf.length, left) : buf.length;
                        out.write(buf, 0, n);
                        md.update(buf, 0, n);
                        left -= n;
                    }
                    s.shutdownOutput();
                    return HexFormat.of().formatHex(md.digest());
                }
            });
            String a = Netns.result(sent, clientNs, timeout);
            String b = Netns.result(received, serverNs, timeout);
            return new String[]{a, b, String.valueOf((System.nanoTime() - start) / 1_000_000)};
        }
    }
}
