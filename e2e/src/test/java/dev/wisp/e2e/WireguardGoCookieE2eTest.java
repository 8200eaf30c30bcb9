package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.local.Sh;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A real wireguard-go initiator against the Java device held "under load" (the test-only threshold
 * 0): its first initiation carries no mac2 and gets a cookie reply; wireguard-go keeps the cookie
 * and its retransmission carries mac2, which completes the handshake. Counted on the underlay with
 * nftables in the Java side's namespace (UDP length 156 = initiation, 72 = cookie reply).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WireguardGoCookieE2eTest {
    WireguardPair net;

    @BeforeAll
    void setUp() throws Exception {
        net = WireguardPair.up("wgc", 184, Map.of("WISP_WG_TEST_UNDER_LOAD", "0"));
    }

    @AfterAll
    void tearDown() throws Exception {
        if (net != null) {
            net.close();
        }
    }

    @Test
    void wireguardGoRetriesWithTheCookieAndTheHandshakeCompletes() throws Exception {
        Path rules = Files.createTempFile("wisp-nft", ".nft");
        try {
            Files.writeString(rules, """
                    table inet wgcookie {
                        chain in {
                            type filter hook input priority 0;
                            udp dport 51820 udp length 156 counter comment "initiations"
                        }
                        chain out {
                            type filter hook output priority 0;
                            udp sport 51820 udp length 72 counter comment "cookie-replies"
                            udp sport 51820 udp length 100 counter comment "responses"
                        }
                    }
                    """);
            WireguardPair.in(net.nsA, "nft", "-f", rules.toString());
        } finally {
            Files.deleteIfExists(rules);
        }
        net.configureInterfaces();
        net.wg(net.nsA, "set", net.javaIf, "peer", net.pubB, "allowed-ips", net.tunB + "/32");
        net.wg(net.nsB, "set", net.goIf, "peer", net.pubA, "endpoint", net.underA + ":51820", "allowed-ips",
                net.tunA + "/32");

        // wireguard-go retransmits after REKEY_TIMEOUT (5 s plus jitter): one ping that waits long enough.
        String ping = Sh.run(Duration.ofSeconds(40), List.of("ip", "netns", "exec", net.nsB, "ping", "-c", "1", "-W",
                "20", net.tunA));
        assertThat(ping).contains("1 received");
        String counters = WireguardPair.in(net.nsA, "nft", "list", "table", "inet", "wgcookie");
        long initiations = counter(counters, "initiations");
        long cookieReplies = counter(counters, "cookie-replies");
        long responses = counter(counters, "responses");
        assertThat(cookieReplies).as("cookie replies sent").isGreaterThanOrEqualTo(1);
        assertThat(initiations).as("initiations: the first without mac2, then the retry").isGreaterThanOrEqualTo(2);
        assertThat(responses).as("handshake responses").isEqualTo(1);
        assertThat(initiations).isEqualTo(cookieReplies + responses);
        assertThat(net.wg(net.nsA, "show", net.javaIf, "latest-handshakes").trim().split("\\s+")[1]).isNotEqualTo("0");
        assertThat(net.ping(net.nsA, net.tunB, 2)).contains("2 received");
    }

    static long counter(String nft, String comment) {
        Matcher m = Pattern.compile("counter packets (\\d+) bytes \\d+ comment \"" + comment + "\"").matcher(nft);
        assertThat(m.find()).as("counter %s in %s", comment, nft).isTrue();
        return Long.parseLong(m.group(1));
    }
}
