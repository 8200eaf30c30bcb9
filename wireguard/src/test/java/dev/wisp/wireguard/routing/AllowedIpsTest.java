package dev.wisp.wireguard.routing;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import org.junit.jupiter.api.Test;

class AllowedIpsTest {
    private static InetAddress ip(String s) throws Exception {
        return InetAddress.getByName(s);
    }

    @Test
    void longestPrefixWinsForIpv4AndIpv6() throws Exception {
        AllowedIps<String> t = new AllowedIps<>();
        t.insert(ip("0.0.0.0"), 0, "default");
        t.insert(ip("10.0.0.0"), 8, "a");
        t.insert(ip("10.1.0.0"), 16, "b");
        t.insert(ip("10.1.2.3"), 32, "c");
        t.insert(ip("fd00::"), 8, "v6a");
        t.insert(ip("fd00:1::"), 32, "v6b");
        assertThat(t.lookup(ip("10.1.2.3"))).isEqualTo("c");
        assertThat(t.lookup(ip("10.1.2.4"))).isEqualTo("b");
        assertThat(t.lookup(ip("10.2.0.1"))).isEqualTo("a");
        assertThat(t.lookup(ip("192.168.0.1"))).isEqualTo("default");
        assertThat(t.lookup(ip("fd00:1::5"))).isEqualTo("v6b");
        assertThat(t.lookup(ip("fd00:2::5"))).isEqualTo("v6a");
        assertThat(t.lookup(ip("2001:db8::1"))).isNull();
    }

    @Test
    void insertingAnOwnedPrefixMovesItAndRemovalPrunes() throws Exception {
        AllowedIps<String> t = new AllowedIps<>();
        t.insert(ip("10.0.0.7"), 24, "a");
        t.insert(ip("10.0.0.0"), 24, "b");
        assertThat(t.lookup(ip("10.0.0.9"))).isEqualTo("b");
        assertThat(t.entriesOf("a")).isEmpty();
        assertThat(t.entriesOf("b")).singleElement().satisfies(e -> {
            assertThat(e.address().getHostAddress()).isEqualTo("10.0.0.0");
            assertThat(e.prefixLength()).isEqualTo(24);
        });
        t.insert(ip("fd00::1"), 128, "b");
        assertThat(t.entriesOf("b")).hasSize(2);
        t.removeAll("b");
        assertThat(t.lookup(ip("10.0.0.9"))).isNull();
        assertThat(t.lookup(ip("fd00::1"))).isNull();
    }
}
